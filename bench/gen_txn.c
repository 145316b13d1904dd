/* gen_txn - synthetic transaction export for the ingest benchmark.
 *
 * usage: gen_txn LINES CUSTOMERS OUT.csv
 * Writes the Online Retail header and LINES invoice lines: invoices of 1-40
 * lines, customers drawn from a fixed pool (so memory should stay flat as
 * LINES grows), dates over two years, 1 % cancellations, 2 % lines without
 * a customer, ids written as floats like the bundled file. Deterministic.
 */
#include <stdio.h>
#include <stdlib.h>

#include "date.h"
#include "rng.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: gen_txn LINES CUSTOMERS OUT.csv\n");
        return 2;
    }
    unsigned long long lines = strtoull(argv[1], NULL, 10);
    unsigned long ncust = strtoul(argv[2], NULL, 10);
    FILE *f = fopen(argv[3], "wb");
    if (!f || ncust == 0) {
        perror(argv[3]);
        return 1;
    }
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    rfm_rng rng;
    rfm_rng_seed(&rng, 2024);
    fputs("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n", f);
    int32_t day0 = date_from_ymd(2010, 1, 1);
    unsigned long long inv = 500000, written = 0;
    while (written < lines) {
        unsigned long cust = 10000 + (unsigned long)rfm_rng_below(&rng, ncust);
        int nl = 1 + (int)rfm_rng_below(&rng, 40);
        int cancel = rfm_rng_below(&rng, 100) == 0, nocust = rfm_rng_below(&rng, 50) == 0;
        char date[11];
        date_format(day0 + (int32_t)rfm_rng_below(&rng, 730), date);
        int hh = 8 + (int)rfm_rng_below(&rng, 10), mm = (int)rfm_rng_below(&rng, 60);
        for (int l = 0; l < nl && written < lines; l++, written++) {
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
