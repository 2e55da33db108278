/*
 * fuzz_folder.h: for harnesses whose reader takes a folder of files (a
 * PEFT adapter, a Hugging Face model): one input becomes the folder's
 * files, split at NUL bytes, and the folder is this process's own.
 *
 * The one idea: libFuzzer hands over one byte string, so the files are
 * its NUL-separated parts, in a fixed order of names; a file past the
 * input's last NUL is written empty. Text files (JSON) cannot hold a
 * NUL, and the binary one is last, so it may.
 */

#ifndef FUZZ_FOLDER_H
#define FUZZ_FOLDER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The folder, made on the first call and reused: each input overwrites
 * its files. libFuzzer's forks (-fork, -jobs) each get their own. */
static const char *
fuzz_folder(const char *name)
{
    static char  dir[96];

    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/slora-fuzz-%s-XXXXXX", name);
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            abort();
        }
    }

    return dir;
}


/* Writes files[0 .. n-1] into dir from data: each up to the next NUL, the
 * last one everything left. Aborts if a file cannot be written. */
static void
fuzz_folder_write(const char *dir, const char *const *files, int n,
    const uint8_t *data, size_t size)
{
    int             i;
    char            path[256];
    FILE           *f;
    size_t          len;
    const uint8_t  *nul;

    for (i = 0; i < n; i++) {
        nul = (i < n - 1) ? memchr(data, '\0', size) : NULL;
        len = nul != NULL ? (size_t) (nul - data) : size;

        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);

        f = fopen(path, "wb");
        if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len)
            || fclose(f) != 0)
        {
            perror(path);
            abort();
        }

        data += len;
        size -= len;

        if (nul != NULL) {
            data++;
            size--;
        }
    }
}

#endif /* FUZZ_FOLDER_H */
