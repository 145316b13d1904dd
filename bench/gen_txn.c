/* gen_txn - synthetic transaction export for the ingest benchmark.
 *
 * usage: gen_txn LINES CUSTOMERS INVOICES OUT.csv
 * Writes the Online Retail header and LINES invoice lines spread over a
 * fixed number of INVOICES of a fixed pool of CUSTOMERS, over two years:
 * more lines means bigger baskets, not more purchases, so a reader whose
 * memory follows customers and purchases stays flat as LINES grows.
 * 1 % cancellations, 2 % invoices without a customer, ids written as
 * floats like the bundled file. Deterministic.
 */
#include <stdio.h>
#include <stdlib.h>

#include "date.h"
#include "rng.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: gen_txn LINES CUSTOMERS INVOICES OUT.csv\n");
        return 2;
    }
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
    fputs("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n", f);
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
            fprintf(f, "%s%llu,%u%c,\"PRODUCT %u, SIZE %c\",%d,%s %02d:%02d:00,%.2f,",
                    cancel ? "C" : "", inv, 20000 + prod, 'A' + (char)(prod % 4), prod,
                    'S' + (char)(prod % 3), cancel ? -qty : qty, date, hh, mm, price);
            if (!nocust)
                fprintf(f, "%lu.0", cust);
            fputs(",United Kingdom\n", f);
        }
        inv++;
    }
    if (fclose(f) != 0) {
        perror(argv[3]);
        return 1;
    }
    return 0;
}
