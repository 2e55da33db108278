/*
 * openai_eq.h: what the request parser's tests share: parse(), which
 * parses a copy of a body and wipes the copy after, and the comparisons
 * they make of what it parsed: a parsed string against a C string (its
 * bytes, its length and the NUL the parser puts after it), two C
 * strings where NULL stands for JSON null, and a body refused as a
 * client would see it (refused_as).
 */

#ifndef OPENAI_EQ_H
#define OPENAI_EQ_H

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_openai.h"


#define CHAT  SLORA_OPENAI_CHAT
#define COMP  SLORA_OPENAI_COMPLETION


/* A body refused, as refused_as checks it: tables of them. */
typedef struct {
    const char           *name;
    slora_openai_kind_e   kind;
    const char           *body;
    int                   status;
    const char           *code;         /* NULL: JSON null */
    const char           *param;        /* NULL: JSON null */
} bad_case_t;


/* Parses a copy of body, then wipes the copy: what the request holds
 * must not point into it. */
static inline int
parse(slora_openai_kind_e kind, const char *body, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int     rc;
    char   *copy;
    size_t  len;

    len = strlen(body);
    copy = malloc(len + 1);
    if (copy == NULL) {
        BAIL_OUT("out of memory");
    }

    memcpy(copy, body, len + 1);
    memset(err, 0, sizeof(slora_openai_err_t));

    rc = slora_openai_parse(copy, len, kind, NULL, req, err);

    memset(copy, 'X', len);
    free(copy);

    return rc;
}


static inline int
streq(const slora_openai_str_t *s, const char *want)
{
    return s->data != NULL && s->len == strlen(want)
           && memcmp(s->data, want, s->len) == 0 && s->data[s->len] == '\0';
}


/* Equal strings, NULL equal to NULL only. */
static inline int
nstreq(const char *a, const char *b)
{
    return (a && b) ? strcmp(a, b) == 0 : a == b;
}


/* A body the parser must refuse with this status, an
 * invalid_request_error of this code and param (NULL: JSON null) and a
 * message; the request freed after, failed as it is. */
static inline void
refused_as(const char *name, slora_openai_kind_e kind, const char *body,
    int status, const char *code, const char *param)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    rc = parse(kind, body, &req, &err);

    if (!ok(rc == SLORA_ERROR && err.status == status
            && nstreq(err.type, "invalid_request_error")
            && nstreq(err.code, code) && nstreq(err.param, param)
            && err.len > 0 && err.len == strlen(err.msg),
            "%s: %d %s %s", name, status, code ? code : "null",
            param ? param : "null"))
    {
        diag("got rc %d, %d %s %s %s: %s", rc, err.status,
             err.type ? err.type : "(null)", err.code ? err.code : "null",
             err.param ? err.param : "null", err.msg);
    }

    slora_openai_req_free(&req);
}


#endif /* OPENAI_EQ_H */
