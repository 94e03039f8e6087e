/* printf family: one formatter writing through a sink, used for the console and buffers. */
#include <stdarg.h>
#include <stdint.h>

#include "printf.h"
#include "uart.h"

struct sink {
    int console;    /* nonzero: write to the console, else to buf */
    char *buf;
    size_t size;
    size_t len;     /* characters produced so far */
};

static void emit(struct sink *s, char c)
{
    if (s->console)
        uart_putc(c);
    else if (s->len + 1 < s->size)
        s->buf[s->len] = c;
    s->len++;
}

static void emit_padded(struct sink *s, const char *str, size_t n, int width, int left,
                        char pad)
{
    int fill = width > (int)n ? width - (int)n : 0;

    if (!left) {
        /* Zero padding goes after a sign. */
        if (pad == '0' && n && *str == '-') {
            emit(s, *str++);
            n--;
        }
        while (fill--)
            emit(s, pad);
    }
    while (n--)
        emit(s, *str++);
    if (left)
        while (fill-- > 0)
            emit(s, ' ');
}

static size_t format_u64(char *out, uint64_t v, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    size_t n = 0, i;

    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static int format(struct sink *s, const char *fmt, va_list ap)
{
    char num[26];

    for (; *fmt; fmt++) {
        int left = 0, width = 0, lng = 0;
        char pad = ' ';
        uint64_t uv;
        int64_t sv;
        size_t n;

        if (*fmt != '%') {
            emit(s, *fmt);
            continue;
        }
        fmt++;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                pad = '0';
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng++;
            fmt++;
        }
        if (left)
            pad = ' ';

        switch (*fmt) {
        case 'd':
        case 'i':
            sv = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
            n = 0;
            if (sv < 0) {
                num[n++] = '-';
                uv = (uint64_t)0 - (uint64_t)sv;
            } else {
                uv = (uint64_t)sv;
            }
            n += format_u64(num + n, uv, 10, 0);
            emit_padded(s, num, n, width, left, pad);
            break;
        case 'u':
        case 'x':
        case 'X':
            uv = lng >= 2 ? va_arg(ap, unsigned long long)
                 : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            n = format_u64(num, uv, *fmt == 'u' ? 10 : 16, *fmt == 'X');
            emit_padded(s, num, n, width, left, pad);
            break;
        case 'p':
            num[0] = '0';
            num[1] = 'x';
            n = 2;
            n += format_u64(num + 2, (uintptr_t)va_arg(ap, void *), 16, 0);
            emit_padded(s, num, n, width, left, ' ');
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            size_t len = 0;

            if (!str)
                str = "(null)";
            while (str[len])
                len++;
            emit_padded(s, str, len, width, left, ' ');
            break;
        }
        case 'c':
            num[0] = (char)va_arg(ap, int);
            emit_padded(s, num, 1, width, left, ' ');
            break;
        case '%':
            emit(s, '%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            emit(s, '%');
            emit(s, *fmt);
            break;
        }
    }
    return (int)s->len;
}

int vprintf(const char *fmt, va_list ap)
{
    struct sink s = { 1, 0, 0, 0 };

    return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = { 0, buf, size, 0 };
    int n = format(&s, fmt, ap);

    if (size)
        buf[s.len < size ? s.len : size - 1] = '\0';
    return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
