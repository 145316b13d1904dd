/* gen_txn - synthetic transaction export for the ingest benchmark.
 *
 * usage: gen_txn LINES CUSTOMERS INVOICES OUT.csv [comma|semicolon|whitespace]
 * Writes the Online Retail header and LINES invoice lines spread over a
 * fixed number of INVOICES of a fixed pool of CUSTOMERS, over two years:
 * more lines means bigger baskets, not more purchases, so a reader whose
 * memory follows customers and purchases stays flat as LINES grows.
 * 1 % cancellations, 2 % invoices without a customer, ids written as
 * floats like the bundled file. Deterministic.
 * Dialects (the same lines): comma (default, the UCI layout); semicolon
 * with decimal commas (a CRM export: data.separator ";", decimal ","); and
 * whitespace (runs of blanks, ISO dates with T, a missing id written "").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "rng.h"

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: gen_txn LINES CUSTOMERS INVOICES OUT.csv "
                        "[comma|semicolon|whitespace]\n");
        return 2;
    }
    const char *dialect = argc == 6 ? argv[5] : "comma";
    int semi = strcmp(dialect, "semicolon") == 0, ws = strcmp(dialect, "whitespace") == 0;
    if (!semi && !ws && strcmp(dialect, "comma") != 0) {
        fprintf(stderr, "gen_txn: dialect must be comma, semicolon or whitespace\n");
        return 2;
    }
    const char *sep = semi ? ";" : ws ? "  " : ",";
    unsigned long long lines = strtoull(argv[1], NULL, 10);
    unsigned long ncust = strtoul(argv[2], NULL, 10);
    unsigned long long ninv = strtoull(argv[3], NULL, 10);
    FILE *f = fopen(argv[4], "wb");
    if (!f || ncust == 0 || ninv == 0 || ninv > lines) {
        fprintf(stderr, "gen_txn: cannot write %s, or INVOICES not in 1..LINES\n", argv[4]);
        return 1;
    }
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    rfm_rng rng;
    rfm_rng_seed(&rng, 2024);
    fprintf(f,
            "InvoiceNo%sStockCode%sDescription%sQuantity%sInvoiceDate%sUnitPrice%sCustomerID%s"
            "Country\n",
            sep, sep, sep, sep, sep, sep, sep);
    int32_t day0 = date_from_ymd(2010, 1, 1);
    unsigned long long inv = 500000, written = 0;
    for (unsigned long long i = 0; i < ninv; i++) {
        unsigned long cust = 10000 + (unsigned long)rfm_rng_below(&rng, ncust);
        /* Invoice i ends at line (i+1) * lines / ninv: sizes vary by one at most. */
        unsigned long long nl = (i + 1) * lines / ninv - written;
        int cancel = rfm_rng_below(&rng, 100) == 0, nocust = rfm_rng_below(&rng, 50) == 0;
        char date[11];
        date_format(day0 + (int32_t)rfm_rng_below(&rng, 730), date);
        int hh = 8 + (int)rfm_rng_below(&rng, 10), mm = (int)rfm_rng_below(&rng, 60);
        for (unsigned long long l = 0; l < nl; l++, written++) {
            unsigned prod = (unsigned)rfm_rng_below(&rng, 4000);
            int qty = 1 + (int)rfm_rng_below(&rng, 24);
            double price = 0.5 + (double)rfm_rng_below(&rng, 2000) / 100.0;
            char pr[32];
            snprintf(pr, sizeof pr, "%.2f", price);
            if (semi)
                *strchr(pr, '.') = ',';
            fprintf(f, "%s%llu%s%u%c%s\"PRODUCT %u, SIZE %c\"%s%d%s%s%c%02d:%02d:00%s%s%s",
                    cancel ? "C" : "", inv, sep, 20000 + prod, 'A' + (char)(prod % 4), sep, prod,
                    'S' + (char)(prod % 3), sep, cancel ? -qty : qty, sep, date, ws ? 'T' : ' ', hh,
                    mm, sep, pr, sep);
            if (!nocust)
                fprintf(f, "%lu.0", cust);
            else if (ws)
                fputs("\"\"", f);
            fprintf(f, ws ? "%s\"United Kingdom\"\n" : "%sUnited Kingdom\n", sep);
        }
        inv++;
    }
    if (fclose(f) != 0) {
        perror(argv[3]);
        return 1;
    }
    return 0;
}
