/*
 * slora_sha256.c: SHA-256 digests through OpenSSL's EVP: of a buffer
 * (its bytes, or hex), of a file or an open descriptor read to its end
 * (hex). The catalog pins adapters' weights with the hex digests; the
 * prefix cache keeps a request's cache salt as a raw digest's first
 * bytes.
 *
 * The one idea: one home for the digest, so that every caller hashes
 * the same way and none but this file includes OpenSSL.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "slora_sha256.h"


static void slora_sha256_hex(const unsigned char *md,
    char hex[SLORA_SHA256_HEX]);


int
slora_sha256_buf(const void *data, size_t len, char hex[SLORA_SHA256_HEX])
{
    unsigned char  md[SLORA_SHA256_LEN];

    if (slora_sha256_raw(data, len, md) != SLORA_OK) {
        return SLORA_ERROR;
    }

    slora_sha256_hex(md, hex);

    return SLORA_OK;
}


int
slora_sha256_raw(const void *data, size_t len,
    unsigned char md[SLORA_SHA256_LEN])
{
    unsigned int   n;
    unsigned char  out[EVP_MAX_MD_SIZE];

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1
        || n != SLORA_SHA256_LEN)
    {
        return SLORA_ERROR;
    }

    memcpy(md, out, SLORA_SHA256_LEN);

    return SLORA_OK;
}



/* The file at path (followed if a symlink) must be a regular file. */
int
slora_sha256_file(const char *path, char hex[SLORA_SHA256_HEX],
    slora_err_t *err)
{
    int          fd, rc;
    struct stat  sb;

    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return slora_err_set(err, SLORA_ERROR, "%s is not a regular file: "
                             "refused", path);
    }

    rc = slora_sha256_fd(fd, path, hex, err);
    close(fd);

    return rc;
}


int
slora_sha256_fd(int fd, const char *path, char hex[SLORA_SHA256_HEX],
    slora_err_t *err)
{
    int             rc;
    ssize_t         n;
    unsigned int    len;
    EVP_MD_CTX     *ctx;
    unsigned char   buf[65536], md[EVP_MAX_MD_SIZE];

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return slora_err_set(err, SLORA_ERROR, "%s: sha256: no context",
                             path);
    }

    rc = SLORA_OK;

    for ( ;; ) {
        n = read(fd, buf, sizeof(buf));

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            rc = n == 0 ? SLORA_OK : SLORA_ERROR;
            break;
        }

        if (EVP_DigestUpdate(ctx, buf, (size_t) n) != 1) {
            rc = SLORA_ERROR;
            break;
        }
    }

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
