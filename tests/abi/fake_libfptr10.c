/*
 * Test double of Atol's libfptr10.so (DTO10) with the real C signatures of libfptr10.h,
 * used to exercise kassa_appliance.registers.fptr10's ctypes marshalling end to end.
 *
 * It holds no register logic: every JSON task is converted wchar_t -> UTF-8 and forwarded
 * over a unix stream socket to a Python bridge (tests/fptr10_bridge.py) that runs the
 * SimulatorRegister. Line protocol (one request, one answer, both '\n'-terminated):
 *   request:  {"op":"open"} | {"op":"close"} | {"op":"validate","task":<task>}
 *             | {"op":"process","task":<task>}
 *   answer:   OK <result json>   |   ERR <code> <description>
 * A broken or refused socket is reported as LIBFPTR_ERROR_NO_CONNECTION (2), as the real
 * driver does when the USB cable is pulled. Like DTO10, input parameters are cleared after
 * every method and getters follow the "return the size needed" buffer protocol.
 *
 * Socket path: settings key "FakeSocketPath", else $KASSA_FAKE_FPTR_SOCKET, else the
 * compile-time default -DFAKE_DEFAULT_SOCKET="\"/path\"".
 *
 * Build: gcc -shared -fPIC -o libfptr10.so fake_libfptr10.c
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <wchar.h>

#ifndef FAKE_DEFAULT_SOCKET
#define FAKE_DEFAULT_SOCKET ""
#endif

#define LIBFPTR_PARAM_JSON_DATA 65645
#define LIBFPTR_ERROR_CONNECTION_DISABLED 1
#define LIBFPTR_ERROR_NO_CONNECTION 2
#define LIBFPTR_ERROR_RECEIPT_PARSE_ERROR 501

typedef void *libfptr_handle;

struct fake_fptr {
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int opened;
    int fd;
    wchar_t *json_in;
    wchar_t *json_out;
    int error_code;
    wchar_t *error_description;
};

/* ---- UTF-8 <-> wchar_t (UTF-32 on Linux) ---- */

static wchar_t *utf8_to_wide(const char *s, size_t n) {
    wchar_t *out = calloc(n + 1, sizeof(wchar_t));
    size_t i = 0, o = 0;
    if (!out) return NULL;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        unsigned long cp;
        size_t extra;
        if (c < 0x80) { cp = c; extra = 0; }
        else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; extra = 1; }
        else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; extra = 2; }
        else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; extra = 3; }
        else { out[o++] = 0xFFFD; i++; continue; }
        if (extra > 0 && i + extra >= n) { /* truncated sequence */
            out[o++] = 0xFFFD;
            break;
        }
        for (size_t k = 1; k <= extra; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80) { cp = 0xFFFD; extra = k - 1; break; }
            cp = (cp << 6) | (cc & 0x3F);
        }
        out[o++] = (wchar_t)cp;
        i += extra + 1;
    }
    out[o] = 0;
    return out;
}

static char *wide_to_utf8(const wchar_t *w, size_t *len_out) {
    size_t n = w ? wcslen(w) : 0;
    char *out = malloc(n * 4 + 1);
    size_t o = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned long cp = (unsigned long)w[i];
        if (cp == '\n' || cp == '\r') cp = ' '; /* keep the line protocol intact */
        if (cp < 0x80) out[o++] = (char)cp;
        else if (cp < 0x800) { out[o++] = (char)(0xC0 | (cp >> 6)); out[o++] = (char)(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = 0;
    if (len_out) *len_out = o;
    return out;
}

static wchar_t *wide_dup(const wchar_t *w) {
    size_t n = w ? wcslen(w) : 0;
    wchar_t *out = calloc(n + 1, sizeof(wchar_t));
    if (out && n) wmemcpy(out, w, n);
    return out;
}

/* DTO10 getter protocol: copy what fits, always terminate, return the size needed. */
static int copy_out(const wchar_t *src, wchar_t *buf, int size) {
    size_t len = src ? wcslen(src) : 0;
    if (buf && size > 0) {
        size_t n = len < (size_t)(size - 1) ? len : (size_t)(size - 1);
        if (n) wmemcpy(buf, src, n);
        buf[n] = 0;
    }
    return (int)(len + 1);
}

static void set_error(struct fake_fptr *f, int code, const char *description) {
    free(f->error_description);
    f->error_code = code;
    f->error_description = utf8_to_wide(description, strlen(description));
}

/* ---- socket to the bridge ---- */

static void disconnect(struct fake_fptr *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}

static int ensure_connected(struct fake_fptr *f) {
    const char *path = f->socket_path;
    struct sockaddr_un addr;
    if (f->fd >= 0) return 0;
    if (!path[0]) path = getenv("KASSA_FAKE_FPTR_SOCKET");
    if (!path || !path[0]) path = FAKE_DEFAULT_SOCKET;
    if (!path[0] || strlen(path) >= sizeof(addr.sun_path)) {
        set_error(f, LIBFPTR_ERROR_NO_CONNECTION, "Нет связи (fake: no bridge socket configured)");
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, path);
    f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        disconnect(f);
        set_error(f, LIBFPTR_ERROR_NO_CONNECTION, "Нет связи");
        return -1;
    }
    return 0;
}

/* Send one line, read one answer line (malloc'ed, without '\n'). */
static char *exchange(struct fake_fptr *f, const char *request, size_t length) {
    size_t sent = 0, cap = 4096, used = 0;
    char *answer;
    while (sent < length) {
        ssize_t w = send(f->fd, request + sent, length - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto broken;
        sent += (size_t)w;
    }
    answer = malloc(cap);
    if (!answer) goto broken;
    for (;;) {
        ssize_t r;
        if (used + 1 >= cap) {
            char *bigger = realloc(answer, cap * 2);
            if (!bigger) { free(answer); goto broken; }
            answer = bigger;
            cap *= 2;
        }
        r = recv(f->fd, answer + used, cap - used - 1, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { free(answer); goto broken; }
        used += (size_t)r;
        answer[used] = 0;
        char *nl = memchr(answer, '\n', used);
        if (nl) { *nl = 0; return answer; }
    }
broken:
    disconnect(f);
    set_error(f, LIBFPTR_ERROR_NO_CONNECTION, "Нет связи");
    return NULL;
}

/* Run one op on the bridge; returns 0 or -1 (error set). */
static int bridge_call(struct fake_fptr *f, const char *op, int with_task, int keep_output) {
    char *task = NULL, *request, *answer;
    size_t task_len = 0, request_len;
    int rc = -1;
    if (!f->opened) {
        set_error(f, LIBFPTR_ERROR_CONNECTION_DISABLED, "Соединение с ККТ не установлено");
        goto done;
    }
    if (with_task && !f->json_in) {
        set_error(f, LIBFPTR_ERROR_RECEIPT_PARSE_ERROR, "Не задан параметр JSON_DATA");
        goto done;
    }
    if (ensure_connected(f) != 0) goto done;
    if (with_task) task = wide_to_utf8(f->json_in, &task_len);
    request = malloc(task_len + strlen(op) + 64);
    if (!request) { free(task); set_error(f, LIBFPTR_ERROR_NO_CONNECTION, "out of memory"); goto done; }
    if (with_task)
        request_len = (size_t)sprintf(request, "{\"op\":\"%s\",\"task\":%s}\n", op, task);
    else
        request_len = (size_t)sprintf(request, "{\"op\":\"%s\"}\n", op);
    free(task);
    answer = exchange(f, request, request_len);
    free(request);
    if (!answer) goto done;
    if (strncmp(answer, "OK", 2) == 0) {
        const char *payload = answer[2] == ' ' ? answer + 3 : answer + 2;
        if (keep_output) {
            free(f->json_out);
            f->json_out = utf8_to_wide(payload, strlen(payload));
        }
        set_error(f, 0, "Ошибок нет");
        rc = 0;
    } else if (strncmp(answer, "ERR ", 4) == 0) {
        char *end = NULL;
        long code = strtol(answer + 4, &end, 10);
        set_error(f, (int)code, (end && *end == ' ') ? end + 1 : "");
    } else {
        disconnect(f);
        set_error(f, LIBFPTR_ERROR_NO_CONNECTION, "Нет связи (fake: garbled bridge answer)");
    }
    free(answer);
done:
    /* DTO10 clears input parameters after every method call. */
    free(f->json_in);
    f->json_in = NULL;
    return rc;
}

/* ---- exported DTO10 API ---- */

int libfptr_create(libfptr_handle *handle) {
    struct fake_fptr *f;
    if (!handle) return -1;
    f = calloc(1, sizeof(*f));
    if (!f) return -1;
    f->fd = -1;
    set_error(f, 0, "Ошибок нет");
    *handle = f;
    return 0;
}

void libfptr_destroy(libfptr_handle *handle) {
    struct fake_fptr *f;
    if (!handle || !*handle) return;
    f = (struct fake_fptr *)*handle;
    disconnect(f);
    free(f->json_in);
    free(f->json_out);
    free(f->error_description);
    free(f);
    *handle = NULL;
}

const char *libfptr_get_version_string(void) { return "10.10.7.0-kassa-fake"; }

int libfptr_set_settings(libfptr_handle handle, const wchar_t *settings) {
    struct fake_fptr *f = handle;
    char *text = wide_to_utf8(settings, NULL);
    const char *key = "\"FakeSocketPath\"";
    char *at;
    f->socket_path[0] = 0;
    if (text && (at = strstr(text, key)) != NULL) {
        at += strlen(key);
        while (*at == ' ' || *at == ':') at++;
        if (*at == '"') {
            size_t n = 0;
            at++;
            while (at[n] && at[n] != '"' && n + 1 < sizeof(f->socket_path)) {
                f->socket_path[n] = at[n];
                n++;
            }
            f->socket_path[n] = 0;
        }
    }
    free(text);
    set_error(f, 0, "Ошибок нет");
    return 0;
}

int libfptr_open(libfptr_handle handle) {
    struct fake_fptr *f = handle;
    f->opened = 1;
    if (bridge_call(f, "open", 0, 0) != 0) {
        f->opened = 0;
        return -1;
    }
    return 0;
}

int libfptr_close(libfptr_handle handle) {
    struct fake_fptr *f = handle;
    f->opened = 0;
    disconnect(f);
    set_error(f, 0, "Ошибок нет");
    return 0;
}

int libfptr_is_opened(libfptr_handle handle) { return ((struct fake_fptr *)handle)->opened; }

void libfptr_set_param_str(libfptr_handle handle, int param_id, const wchar_t *value) {
    struct fake_fptr *f = handle;
    if (param_id != LIBFPTR_PARAM_JSON_DATA) return;
    free(f->json_in);
    f->json_in = wide_dup(value);
}

int libfptr_get_param_str(libfptr_handle handle, int param_id, wchar_t *value, int size) {
    struct fake_fptr *f = handle;
    return copy_out(param_id == LIBFPTR_PARAM_JSON_DATA ? f->json_out : NULL, value, size);
}

int libfptr_process_json(libfptr_handle handle) {
    struct fake_fptr *f = handle;
    free(f->json_out);
    f->json_out = NULL;
    return bridge_call(f, "process", 1, 1);
}

int libfptr_validate_json(libfptr_handle handle) {
    return bridge_call((struct fake_fptr *)handle, "validate", 1, 0);
}

int libfptr_error_code(libfptr_handle handle) { return ((struct fake_fptr *)handle)->error_code; }

int libfptr_error_description(libfptr_handle handle, wchar_t *value, int size) {
    return copy_out(((struct fake_fptr *)handle)->error_description, value, size);
}
