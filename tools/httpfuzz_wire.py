# tools/httpfuzz_wire.py: HTTP/1.1 and HTTP/2 (cleartext, prior
# knowledge) for tools/httpfuzz, read strictly: an answer is parsed as it
# arrives, and anything not well-formed (a bad status line, a body short
# of its length, a chunk that does not end, an SSE stream without its end)
# is an error the campaign records with the input that caused it.

import re
import socket
import time


class Answer:
    """One response read off a socket, parsed as it is read."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b''
        self.errors = []
        self.chunked = False
        self.complete = False
        self.raw_head = b''


def read_answer(sock, deadline, head_only=False, max_body=1 << 24,
                first_bytes=None):
    """Reads one response; first_bytes: stop after that many body bytes
    (a client that goes mid-stream). Returns (Answer, leftover)."""
    a = Answer()
    buf = b''

    def more():
        nonlocal buf
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError('timeout')
        sock.settimeout(left)
        d = sock.recv(65536)
        if not d:
            raise EOFError('eof')
        buf += d

    try:
        while b'\r\n\r\n' not in buf:
            more()
            if len(buf) > 65536:
                a.errors.append('header over 64 KB')
                return a, b''
        i = buf.index(b'\r\n\r\n')
        head, buf = buf[:i], buf[i + 4:]
        a.raw_head = head
        lines = head.split(b'\r\n')
        m = re.match(rb'^HTTP/1\.[01] (\d{3})(?: .*)?$', lines[0])
        if not m:
            a.errors.append('bad status line %r' % lines[0][:80])
            return a, b''
        a.status = int(m.group(1))
        for ln in lines[1:]:
            mm = re.match(rb'^([!#$%&\'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)'
                          rb'[ \t]*$', ln)
            if not mm:
                a.errors.append('bad header line %r' % ln[:80])
                continue
            k = mm.group(1).decode().lower()
            v = mm.group(2).decode('latin-1')
            a.headers[k] = a.headers[k] + ', ' + v if k in a.headers else v
        if head_only or a.status in (204, 304) or 100 <= a.status < 200:
            a.complete = True
            return a, buf
        te = a.headers.get('transfer-encoding')
        if te is not None:
            if te.lower() != 'chunked':
                a.errors.append('transfer-encoding %s' % te)
            a.chunked = True
            while True:
                while b'\r\n' not in buf:
                    more()
                    if len(buf) > 64 and b'\r\n' not in buf:
                        a.errors.append('chunk size line too long')
                        return a, b''
                j = buf.index(b'\r\n')
                ln, buf = buf[:j], buf[j + 2:]
                if not re.match(rb'^[0-9a-fA-F]{1,8}$', ln):
                    a.errors.append('bad chunk size %r' % ln[:40])
                    return a, b''
                n = int(ln, 16)
                if n == 0:
                    while len(buf) < 2:
                        more()
                    if buf[:2] != b'\r\n':
                        a.errors.append('trailer after last chunk')
                    buf = buf[2:]
                    a.complete = True
                    return a, buf
                while len(buf) < n + 2:
                    more()
                if buf[n:n + 2] != b'\r\n':
                    a.errors.append('chunk not followed by CRLF')
                    return a, b''
                a.body += buf[:n]
                buf = buf[n + 2:]
                if first_bytes is not None and len(a.body) >= first_bytes:
                    return a, b''
                if len(a.body) > max_body:
                    a.errors.append('body past %d bytes' % max_body)
                    return a, b''
        cl = a.headers.get('content-length')
        if cl is not None:
            if not re.match(r'^\d+$', cl):
                a.errors.append('content-length %r' % cl)
                return a, b''
            n = int(cl)
            while len(buf) < n:
                if first_bytes is not None and len(buf) >= first_bytes:
                    a.body = buf
                    return a, b''
                more()
            a.body, buf = buf[:n], buf[n:]
            a.complete = True
            return a, buf
        # to the end of the connection
        while True:
            try:
                more()
            except EOFError:
                break
            if first_bytes is not None and len(buf) >= first_bytes:
                a.body = buf
                return a, b''
        a.body, buf = buf, b''
        a.complete = True
        return a, b''
    except EOFError:
        a.errors.append('connection closed %s' % (
            'before the header' if a.status is None else 'inside the body'))
        a.body = a.body or buf
        return a, b''
    except (TimeoutError, socket.timeout):
        a.errors.append('timeout %s' % (
            'before the header' if a.status is None else 'inside the body'))
        a.body = a.body or buf
        return a, b''
    except ConnectionResetError:
        a.errors.append('connection reset %s' % (
            'before the header' if a.status is None else 'inside the body'))
        return a, b''


def connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(('127.0.0.1', port))
    return s


def build(method, path, body=None, headers=None, version='HTTP/1.1',
          chunked=None, cl=None, keepalive=False):
    h = [('Host', '127.0.0.1')] if version == 'HTTP/1.1' else []
    if not keepalive and version == 'HTTP/1.1':
        h.append(('Connection', 'close'))
    if body is not None:
        h.append(('Content-Type', 'application/json'))
    for k, v in (headers or []):
        h.append((k, v))
    data = body if body is not None else b''
    if chunked is not None:
        h.append(('Transfer-Encoding', 'chunked'))
        out = []
        i = 0
        while i < len(data):
            n = min(chunked(len(data) - i), len(data) - i)
            out.append(b'%x\r\n' % n + data[i:i + n] + b'\r\n')
            i += n
        data = b''.join(out) + b'0\r\n\r\n'
    elif cl is not None:
        h.append(('Content-Length', str(cl)))
    elif body is not None or method in ('POST', 'PUT'):
        h.append(('Content-Length', str(len(data))))
    if isinstance(path, str):
        path = path.encode('latin-1')
    req = (method.encode() + b' ' + path + b' ' + version.encode() + b'\r\n'
           + b''.join(k.encode() + b': ' + (v if isinstance(v, bytes)
                                            else v.encode('latin-1'))
                      + b'\r\n' for k, v in h) + b'\r\n')
    return req + data


# ------------------------------------------------- HTTP/2, prior knowledge

H2_STATUS = {0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400,
             0x8d: 404, 0x8e: 500}


def h2_int(n, prefix_bits, first=0):
    lim = (1 << prefix_bits) - 1
    if n < lim:
        return bytes([first | n])
    out = [first | lim]
    n -= lim
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def h2_headers(pairs):
    """HPACK: each a literal without indexing, a new name, no Huffman."""
    out = b''
    for k, v in pairs:
        k = k.encode() if isinstance(k, str) else k
        v = v.encode('latin-1') if isinstance(v, str) else v
        out += b'\x00' + h2_int(len(k), 7) + k + h2_int(len(v), 7) + v
    return out


def h2_frame(ftype, flags, sid, payload):
    return (len(payload).to_bytes(3, 'big') + bytes([ftype, flags])
            + sid.to_bytes(4, 'big') + payload)


class H2Conn:
    """One HTTP/2 connection: frames read as they come; per stream its
    status (from nginx's HPACK of :status), its DATA and how it ended."""

    def __init__(self, port, window=65535):
        self.s = connect(port)
        self.buf = b''
        self.streams = {}
        self.goaway = None
        settings = (b'\x00\x04' + window.to_bytes(4, 'big'))
        self.s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
                       + h2_frame(4, 0, 0, settings))

    def request(self, sid, method, path, body=None, headers=(),
                data_frames=1, end=True):
        hs = [(':method', method), (':scheme', 'http'), (':path', path),
              (':authority', '127.0.0.1')] + list(headers)
        if body is not None:
            hs.append(('content-type', 'application/json'))
        self.streams[sid] = {'status': None, 'data': b'', 'end': False,
                             'rst': None}
        out = h2_frame(1, 4 | (1 if body is None and end else 0), sid,
                       h2_headers(hs))
        if body is not None:
            step = max(1, -(-len(body) // data_frames))
            chunks = [body[i:i + step] for i in range(0, len(body), step)]
            chunks = chunks or [b'']
            for i, c in enumerate(chunks):
                last = i == len(chunks) - 1 and end
                out += h2_frame(0, 1 if last else 0, sid, c)
        self.s.sendall(out)

    def rst(self, sid, code=8):
        self.s.sendall(h2_frame(3, 0, sid, code.to_bytes(4, 'big')))

    def pump(self, until, deadline):
        """Reads frames until until() or the deadline; False on EOF."""
        while not until():
            left = deadline - time.time()
            if left <= 0:
                return True
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except (socket.timeout, TimeoutError):
                return True
            except OSError:
                return False
            if not d:
                return False
            self.buf += d
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], 'big')
                if len(self.buf) < 9 + n:
                    break
                t, fl = self.buf[3], self.buf[4]
                sid = int.from_bytes(self.buf[5:9], 'big') & 0x7fffffff
                pl = self.buf[9:9 + n]
                self.buf = self.buf[9 + n:]
                self.frame(t, fl, sid, pl)
        return True

    def frame(self, t, fl, sid, pl):
        st = self.streams.get(sid)
        if t == 4 and not fl & 1:
            self.s.sendall(h2_frame(4, 1, 0, b''))
        elif t == 6 and not fl & 1:
            self.s.sendall(h2_frame(6, 1, 0, pl))
        elif t == 7:
            self.goaway = int.from_bytes(pl[4:8], 'big')
        elif t == 1 and st is not None:
            if pl and pl[0] in H2_STATUS:
                st['status'] = H2_STATUS[pl[0]]
            elif len(pl) >= 5 and pl[0] == 0x48 and pl[1] == 3:
                st['status'] = int(pl[2:5])
            if fl & 1:
                st['end'] = True
        elif t == 0 and st is not None:
            st['data'] += pl
            if pl:
                self.s.sendall(h2_frame(8, 0, 0, len(pl).to_bytes(4, 'big'))
                               + h2_frame(8, 0, sid,
                                          len(pl).to_bytes(4, 'big')))
            if fl & 1:
                st['end'] = True
        elif t == 3 and st is not None:
            st['rst'] = int.from_bytes(pl[:4], 'big')

    def close(self):
        self.s.close()
