/* modelfile.h - the versioned models/ folder: atomic writes and manifest.
 *
 * A training run stages every file in a fresh sibling folder
 * (models.tmp-XXXXXX), copies in the files of models it does not refit,
 * writes manifest.json last, fsyncs, and swaps the folder into place with
 * one renameat2(RENAME_EXCHANGE). A run that fails or dies midway leaves
 * the old models/ untouched.
 *
 * Writers take turns: modelfile_begin takes an exclusive flock on the file
 * <dir>.lock beside the folder (models.lock for models/) before it reads
 * anything of the current version, and the lock is held until the swap is
 * done, so two runs that each keep the other's models (rfm-train --only)
 * both land. The lock file records the holder (program, pid, host, start
 * time) for the message of the run that finds it taken; it is never
 * removed (removing it would let two runs lock two different files).
 * The kernel drops the lock when its holder exits, however it exits.
 *
 * Each staging folder holds a file `owner` (pid, the process's start time
 * since boot, boot id, host) until just before the swap. Under the lock,
 * modelfile_begin removes every staging folder of dir whose owner is gone
 * (no such process, or the pid now names another process, or the machine
 * rebooted), whatever its age; one without an owner file (an older build,
 * or a run killed while removing the previous version) after an hour.
 *
 * manifest.json (format_version 1):
 *   {"format_version": 1, "created_at": ISO-8601 UTC, "generator": "...",
 *    "data": {...}, "cleaning": {...},
 *    "models": {name: {"version", "file", "sha256", "card", "card_sha256",
 *                      "trained_at", "data_sha256", "metrics": {...}}}}
 * Every file named in models is checked against its sha256 on load.
 */
#ifndef RFM_MODELFILE_H
#define RFM_MODELFILE_H

#include <jansson.h>
#include <stddef.h>

#include "status.h"

#define MODELFILE_FORMAT 1

typedef struct modelfile_stage modelfile_stage;
typedef struct modelfile_lock modelfile_lock;

/* Flags of modelfile_begin and modelfile_lock. */
enum {
    MODELFILE_KEEP = 1, /* carry over the current version's models */
    MODELFILE_WAIT = 2, /* wait for the lock instead of failing with RFM_EBUSY */
};

/* Take the writers' lock of dir (the flock on <dir>.lock, created if
 * needed) and record this process as its holder. Without MODELFILE_WAIT, a
 * lock held by another open of the file fails at once with RFM_EBUSY and a
 * message naming the holder: "models is being written by rfm-train pid
 * 123 on host since 2024-05-01T10:00:00Z (lock file models.lock)". With
 * it, blocks until the holder is done. RFM_EIO when the file cannot be
 * opened. The lock belongs to the returned object: one per dir at a time
 * in a process (a second one in the same process waits on the first). */
rfm_status modelfile_lock_take(const char *dir, int flags, modelfile_lock **out, char *err,
                               size_t errlen);
/* Release the lock and free l (NULL is fine). */
void modelfile_lock_release(modelfile_lock *l);

/* Start staging a new version of dir: take dir's lock (see
 * modelfile_lock_take; flags MODELFILE_WAIT), remove the staging folders of
 * runs that are gone, and create this one. With MODELFILE_KEEP, the current
 * manifest's models (and their files) are carried over, to be replaced by
 * those written in this run. The lock is held until modelfile_commit or
 * modelfile_abort. */
rfm_status modelfile_begin(const char *dir, int flags, modelfile_stage **out, char *err,
                           size_t errlen);
/* Write a file into the staging folder (JSON with 17-digit doubles, or
 * text). The name must be a plain file name. */
rfm_status modelfile_write_json(modelfile_stage *s, const char *name, const json_t *j, char *err,
                                size_t errlen);
rfm_status modelfile_write_text(modelfile_stage *s, const char *name, const char *text, size_t len,
                                char *err, size_t errlen);
/* Record a model in the manifest: its file (and card, may be NULL) must
 * have been written in this stage; their sha256 are computed here. metrics
 * is stolen (may be NULL). */
rfm_status modelfile_add_model(modelfile_stage *s, const char *model, const char *version,
                               const char *file, const char *card, const char *data_sha256,
                               json_t *metrics, char *err, size_t errlen);
/* Set a top-level manifest member (value stolen). */
rfm_status modelfile_set(modelfile_stage *s, const char *key, json_t *value, char *err,
                         size_t errlen);
/* Write the manifest and swap the folder into place; frees s and releases
 * the lock either way. */
rfm_status modelfile_commit(modelfile_stage *s, char *err, size_t errlen);
/* Drop the staged folder, release the lock and free s. The existing
 * models/ is untouched. */
void modelfile_abort(modelfile_stage *s);
/* The manifest entry of a model in the stage (carried over or added in
 * this run: {version, file, metrics, ...}), borrowed until the stage ends;
 * NULL when the stage has none. */
const json_t *modelfile_stage_model(const modelfile_stage *s, const char *model);
/* Path of the staging folder (for tests). */
const char *modelfile_stage_dir(const modelfile_stage *s);

/* Read dir/manifest.json, check its format version and the sha256 of
 * every file it lists. On failure the message names the file and why
 * (missing, unreadable, checksum mismatch) and how to regenerate. */
rfm_status modelfile_open(const char *dir, json_t **manifest, char *err, size_t errlen);
/* Read the JSON file of one model listed in a verified manifest:
 * RFM_ENOTFOUND when the manifest does not list it. */
rfm_status modelfile_load(const char *dir, const json_t *manifest, const char *model, json_t **out,
                          char *err, size_t errlen);

#endif
