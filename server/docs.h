/* docs.h - the /docs page rendered from the API contract. */
#ifndef RFM_DOCS_H
#define RFM_DOCS_H

#include <stddef.h>

#include "oas.h"

/* The HTML page of spec's operations (new string of *len bytes, caller
 * frees), or NULL when out of memory. Reentrant; reads spec only. */
char *docs_render(const oas_spec *spec, size_t *len);

#endif
