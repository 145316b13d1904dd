/* modelfile.h - the versioned models/ folder: atomic writes and manifest.
 *
 * A training run stages every file in a fresh sibling folder
 * (models.tmp-XXXXXX), copies in the files of models it does not refit,
 * writes manifest.json last, fsyncs, and swaps the folder into place with
 * one renameat2(RENAME_EXCHANGE). A run that fails or dies midway leaves
 * the old models/ untouched; stale staging folders are removed by the next
 * run.
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

/* Start staging a new version of dir. When keep_existing, the current
 * manifest's models (and their files) are carried over, to be replaced by
 * those written in this run. */
rfm_status modelfile_begin(const char *dir, int keep_existing, modelfile_stage **out, char *err,
                           size_t errlen);
/* Write a file into the staging folder (JSON with 17-digit doubles, or
 * text). The name must be a plain file name. */
rfm_status modelfile_write_json(modelfile_stage *s, const char *name, const json_t *j,
                                char *err, size_t errlen);
rfm_status modelfile_write_text(modelfile_stage *s, const char *name, const char *text,
                                size_t len, char *err, size_t errlen);
/* Record a model in the manifest: its file (and card, may be NULL) must
 * have been written in this stage; their sha256 are computed here. metrics
 * is stolen (may be NULL). */
rfm_status modelfile_add_model(modelfile_stage *s, const char *model, const char *version,
                               const char *file, const char *card, const char *data_sha256,
                               json_t *metrics, char *err, size_t errlen);
/* Set a top-level manifest member (value stolen). */
rfm_status modelfile_set(modelfile_stage *s, const char *key, json_t *value, char *err,
                         size_t errlen);
/* Write the manifest and swap the folder into place; frees s either way. */
rfm_status modelfile_commit(modelfile_stage *s, char *err, size_t errlen);
/* Drop the staged folder; frees s. The existing models/ is untouched. */
void modelfile_abort(modelfile_stage *s);
/* Path of the staging folder (for tests). */
const char *modelfile_stage_dir(const modelfile_stage *s);

/* Read dir/manifest.json, check its format version and the sha256 of
 * every file it lists. On failure the message names the file and why
 * (missing, unreadable, checksum mismatch) and how to regenerate. */
rfm_status modelfile_open(const char *dir, json_t **manifest, char *err, size_t errlen);
/* Read the JSON file of one model listed in a verified manifest:
 * RFM_ENOTFOUND when the manifest does not list it. */
rfm_status modelfile_load(const char *dir, const json_t *manifest, const char *model,
                          json_t **out, char *err, size_t errlen);

#endif
