/*
 * slora_adapter_file.c: reads the files of a PEFT folder into memory the
 * engine owns, and the sha256 the catalog pins an adapter's weights with.
 *
 * The one idea: an adapter's file is read once, whole, into a buffer of
 * the size fstat() gave, and everything after it (the parse, the sha256
 * pin, the page images) looks at that buffer only. A file truncated or
 * rewritten in place while it is read gives an error (a short read) or
 * the bytes as read, never a fault in a mapping that kills the engine;
 * and the bytes the pin approved are the bytes that are served.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "slora_adapter.h"


static int slora_adapter_fd_read(int fd, const char *path, size_t max,
    uint8_t **buf, size_t *len, slora_err_t *err);
static void slora_sha256_hex(const unsigned char *md,
    char hex[SLORA_SHA256_HEX]);


int
slora_adapter_file_read(const char *path, size_t max, uint8_t **buf,
    size_t *len, slora_err_t *err)
{
    int  fd, rc;

    *buf = NULL;
    *len = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    rc = slora_adapter_fd_read(fd, path, max, buf, len, err);
    close(fd);

    return rc;
}


/* fd's bytes, as many as fstat() says it has, at most max. */
static int
slora_adapter_fd_read(int fd, const char *path, size_t max, uint8_t **buf,
    size_t *len, slora_err_t *err)
{
    size_t        size, n;
    ssize_t       r;
    uint8_t      *p;
    struct stat   sb;

    if (fstat(fd, &sb) == -1) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    if (!S_ISREG(sb.st_mode)) {
        return slora_err_set(err, SLORA_ERROR, "%s: not a regular file",
                             path);
    }

    if ((uint64_t) sb.st_size > max) {
        return slora_err_set(err, SLORA_ERROR, "%s: %lld bytes, more than "
                             "the %zu it may take", path,
                             (long long) sb.st_size, max);
    }

    size = (size_t) sb.st_size;

    p = malloc(size + 1);
    if (p == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: no memory for %zu "
                             "bytes", path, size);
    }

    for (n = 0; n < size; n += (size_t) r) {
        r = pread(fd, p + n, size - n, (off_t) n);

        if (r == -1 && errno == EINTR) {
            r = 0;
            continue;
        }

        if (r == -1) {
            slora_err_set(err, SLORA_ERROR, "%s: %s", path, strerror(errno));
            free(p);
            return SLORA_ERROR;
        }

        if (r == 0) {
            slora_err_set(err, SLORA_ERROR, "%s: %zu bytes where there "
                          "were %zu: cut short while it was read", path, n,
                          size);
            free(p);
            return SLORA_ERROR;
        }
    }

    p[size] = '\0';
    *buf = p;
    *len = size;

    return SLORA_OK;
}


int
slora_sha256_buf(const void *data, size_t len, char hex[SLORA_SHA256_HEX])
{
    unsigned int   n;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        return SLORA_ERROR;
    }

    slora_sha256_hex(md, hex);

    return SLORA_OK;
}


int
slora_sha256_file(const char *path, char hex[SLORA_SHA256_HEX],
    slora_err_t *err)
{
    int             rc;
    FILE           *f;
    size_t          n;
    unsigned int    len;
    EVP_MD_CTX     *ctx;
    unsigned char   buf[65536], md[EVP_MAX_MD_SIZE];

    f = fopen(path, "rb");
    if (f == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        fclose(f);
        return slora_err_set(err, SLORA_ERROR, "%s: sha256: no context",
                             path);
    }

    rc = SLORA_OK;

    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (EVP_DigestUpdate(ctx, buf, n) != 1) {
            rc = SLORA_ERROR;
            break;
        }
    }

    if (ferror(f)) {
        rc = SLORA_ERROR;
    }

    fclose(f);

    if (rc == SLORA_OK && EVP_DigestFinal_ex(ctx, md, &len) != 1) {
        rc = SLORA_ERROR;
    }

    EVP_MD_CTX_free(ctx);

    if (rc != SLORA_OK || len != 32) {
        return slora_err_set(err, SLORA_ERROR, "%s: read error while "
                             "hashing", path);
    }

    slora_sha256_hex(md, hex);

    return SLORA_OK;
}


static void
slora_sha256_hex(const unsigned char *md, char hex[SLORA_SHA256_HEX])
{
    int  i;

    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}
