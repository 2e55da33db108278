/*
 * slora_sha256.h: SHA-256 digests (slora_sha256.c): a buffer's as bytes
 * or hex, a file's or an open descriptor's as hex.
 */

#ifndef SLORA_SHA256_H
#define SLORA_SHA256_H


#include <stddef.h>

#include "slora_core.h"


#define SLORA_SHA256_LEN        32      /* a digest's bytes */
#define SLORA_SHA256_HEX        65      /* 64 hex digits and a NUL */


/* The digest of len bytes, as bytes or as hex. */
int slora_sha256_raw(const void *data, size_t len,
    unsigned char md[SLORA_SHA256_LEN]);
int slora_sha256_buf(const void *data, size_t len,
    char hex[SLORA_SHA256_HEX]);

/* Hex digest of a regular file's bytes (the path followed if a
 * symlink), or of fd's bytes read to its end (path names it in errors). */
int slora_sha256_file(const char *path, char hex[SLORA_SHA256_HEX],
    slora_err_t *err);
int slora_sha256_fd(int fd, const char *path, char hex[SLORA_SHA256_HEX],
    slora_err_t *err);


#endif /* SLORA_SHA256_H */
