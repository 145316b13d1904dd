/* status.c - descriptions of rfm_status codes and the error-buffer helper. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

const char *rfm_strstatus(rfm_status st)
{
    switch (st) {
    case RFM_OK: return "ok";
    case RFM_ENOMEM: return "out of memory";
    case RFM_EIO: return "input/output error";
    case RFM_EPARSE: return "malformed input";
    case RFM_EINVAL: return "invalid argument";
    case RFM_EFORMAT: return "wrong model file format";
    case RFM_ECHECKSUM: return "checksum mismatch";
    case RFM_ENOCONVERGE: return "did not converge";
    case RFM_ENOTFOUND: return "not found";
    case RFM_ELIBRARY: return "numerical library error";
    case RFM_EDATA: return "unusable data";
    case RFM_EBUSY: return "locked by another process";
    case RFM_ENOSPC: return "no space left";
    }
    return "unknown status";
}

rfm_status rfm_fail(char *err, size_t errlen, rfm_status st, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}
