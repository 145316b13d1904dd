#!/usr/bin/env bash
# layers.sh - checks the include rules of docs/architecture.md:
#   core/base <- core/data <- core/models <- core/files <- core/serving
# a core/ file includes project headers of its own layer or an earlier one,
# never of server/, train/, score/, report/ or tests/; core/ never prints or exits;
# server/, train/, score/ and report/ never include each other. Prints each breach, exits 1 on any.
cd "$(dirname "$0")/.." || exit 2
layers=(base data models files serving)
declare -A layer_of rank
for i in "${!layers[@]}"; do
    rank[${layers[$i]}]=$i
    for h in core/${layers[$i]}/*.h; do layer_of[$(basename "$h")]=${layers[$i]}; done
done
bad=0
for f in core/*/*.[ch] core/*/*.cpp; do
    own=$(basename "$(dirname "$f")")
    [ -n "${rank[$own]}" ] || { echo "$f: core/$own is not a layer (${layers[*]})"; bad=1; continue; }
    while IFS=: read -r line inc; do
        l=${layer_of[$inc]}
        if [ -z "$l" ]; then
            echo "$f:$line: includes \"$inc\", which is not in core/"; bad=1
        elif [ "${rank[$l]}" -gt "${rank[$own]}" ]; then
            echo "$f:$line: core/$own includes \"$inc\" of the later layer core/$l"; bad=1
        fi
    done < <(grep -n '^#include "' "$f" | sed 's/^\([0-9]*\):#include "\([^"]*\)".*/\1:\2/')
done
if grep -nE '\b(printf|fprintf|puts|fputs|perror|exit|abort)[[:space:]]*\(' core/*/*.c core/*/*.cpp \
    | grep -vE 'v?snprintf'; then
    echo "core/ prints or exits: it returns a status and an error message instead"; bad=1
fi
programs=(server train score report)
for a in "${programs[@]}"; do for b in "${programs[@]}"; do [ "$a" = "$b" ] || pairs+=("$a $b"); done; done
for pair in "${pairs[@]}"; do
    set -- $pair
    for h in $2/*.h; do
        [ -e "$h" ] || continue
        if grep -ln "#include \"$(basename "$h")\"" $1/*.c $1/*.h 2>/dev/null; then
            echo "$1/ includes $h"; bad=1
        fi
    done
done
[ $bad = 0 ] && echo "layers: core/ ${layers[*]}: every include in order"
exit $bad
