/* fileio.h - whole small files into memory (configs, contracts, model
 * files being copied). Not for transaction exports: those stream (csv.h). */
#ifndef RFM_FILEIO_H
#define RFM_FILEIO_H

#include <stddef.h>

#include "status.h"

/* Read path into a new NUL-terminated buffer (*buf, caller frees) of *len
 * bytes. RFM_EIO naming the path, or RFM_ENOMEM; *buf is NULL on failure. */
rfm_status fileio_read(const char *path, char **buf, size_t *len, char *err, size_t errlen);

/* The folder holding path synced, so that a rename of path (made before)
 * is on the disk. RFM_EIO naming the folder. */
rfm_status fileio_sync_parent(const char *path, char *err, size_t errlen);

#endif
