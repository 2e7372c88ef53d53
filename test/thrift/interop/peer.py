#!/usr/bin/python3
"""Apache Thrift (Python, python3-thrift 0.17) peer for Meridian's interop tests.

Run it with Debian's interpreter, which has the thrift package:

  /usr/bin/python3 test/thrift/interop/peer.py server --transport header|framed|buffered \
      --protocol binary|compact [--port 0] [--ignore-stdin]
  /usr/bin/python3 test/thrift/interop/peer.py client --port N --transport header|framed|buffered \
      --protocol binary|compact --case NAME [--json ARG] [--timeout-ms MS]

The server binds 127.0.0.1 only, prints exactly one line "listening <port>" once it accepts,
and exits when its stdin reaches end of file (its parent died or closed it) or on SIGTERM.
The client runs one case and prints one JSON line; see README.md for the cases and JSON forms.
"""

import argparse
import base64
import json
import logging
import math
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the committed gen-py/ files
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-py"))

from thrift.Thrift import TApplicationException, TException, TType  # noqa: E402
from thrift.protocol.TBinaryProtocol import (  # noqa: E402
    TBinaryProtocolAccelerated,
    TBinaryProtocolAcceleratedFactory,
)
from thrift.protocol.TCompactProtocol import (  # noqa: E402
    TCompactProtocolAccelerated,
    TCompactProtocolAcceleratedFactory,
)
from thrift.protocol.THeaderProtocol import THeaderProtocol, THeaderProtocolFactory  # noqa: E402
from thrift.server.TServer import TThreadedServer  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID  # noqa: E402

from meridian_interop import InteropService  # noqa: E402
from meridian_interop.ttypes import Everything, Invalid, NotFound  # noqa: E402

HOST = "127.0.0.1"
I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1
INT_RANGES = {
    TType.BYTE: (-(2 ** 7), 2 ** 7 - 1),
    TType.I16: (-(2 ** 15), 2 ** 15 - 1),
    TType.I32: (-(2 ** 31), 2 ** 31 - 1),
    TType.I64: (I64_MIN, I64_MAX),
}
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


# ---------------------------------------------------------------------------------------------
# JSON <-> Thrift objects, driven by the generated thrift_spec tables.
#
#   bool -> true/false; i8, i16, i32 and enums -> numbers; i64 -> decimal string (numbers are
#   accepted on input); double -> number, or "NaN" / "Infinity" / "-Infinity"; string -> string;
#   binary -> base64 (standard alphabet, padded); list -> array; set -> array (sorted on output);
#   map with string keys -> object (keys sorted on output); map with other keys ->
#   [[key, value], ...] (sorted by key on output; an object with decimal keys is accepted on
#   input); struct, union, exception -> object keyed by IDL field name, unset fields left out
#   (on input, a missing field takes its IDL default and null leaves the field unset).
# ---------------------------------------------------------------------------------------------


class InputError(ValueError):
    pass


def struct_fields(cls):
    return [f for f in cls.thrift_spec if f is not None]


def from_json(ttype, args, value, where):
    if ttype == TType.BOOL:
        if not isinstance(value, bool):
            raise InputError("%s: expected a boolean" % where)
        return value
    if ttype in INT_RANGES:
        if ttype == TType.I64 and isinstance(value, str):
            try:
                value = int(value, 10)
            except ValueError:
                raise InputError("%s: expected a decimal i64" % where)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError("%s: expected an integer" % where)
        lo, hi = INT_RANGES[ttype]
        if not lo <= value <= hi:
            raise InputError("%s: %d out of range" % (where, value))
        return value
    if ttype == TType.DOUBLE:
        if isinstance(value, str) and value in NON_FINITE:
            return NON_FINITE[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError("%s: expected a number" % where)
        return float(value)
    if ttype == TType.STRING:
        if not isinstance(value, str):
            raise InputError("%s: expected a string" % where)
        if args == "BINARY":
            try:
                return base64.b64decode(value, validate=True)
            except ValueError:
                raise InputError("%s: expected base64" % where)
        return value
    if ttype in (TType.LIST, TType.SET):
        etype, eargs = args[0], args[1]
        if not isinstance(value, list):
            raise InputError("%s: expected an array" % where)
        items = [from_json(etype, eargs, v, "%s[%d]" % (where, i)) for i, v in enumerate(value)]
        return items if ttype == TType.LIST else set(items)
    if ttype == TType.MAP:
        ktype, kargs, vtype, vargs = args[0], args[1], args[2], args[3]
        if isinstance(value, dict):
            pairs = list(value.items())
            if ktype in INT_RANGES:
                try:
                    pairs = [(int(k, 10), v) for k, v in pairs]
                except ValueError:
                    raise InputError("%s: map keys must be decimal integers" % where)
        elif isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
            pairs = [(p[0], p[1]) for p in value]
        else:
            raise InputError("%s: expected an object or [[key, value], ...]" % where)
        out = {}
        for k, v in pairs:
            key = from_json(ktype, kargs, k, "%s key" % where)
            out[key] = from_json(vtype, vargs, v, "%s[%r]" % (where, k))
        return out
    if ttype == TType.STRUCT:
        return struct_from_json(args[0], value, where)
    raise InputError("%s: unsupported type %d" % (where, ttype))


def struct_from_json(cls, value, where):
    if not isinstance(value, dict):
        raise InputError("%s: expected an object" % where)
    by_name = {f[2]: f for f in struct_fields(cls)}
    kwargs = {}
    for name, v in value.items():
        field = by_name.get(name)
        if field is None:
            raise InputError("%s: %s has no field %r" % (where, cls.__name__, name))
        # null: unset, even where the IDL has a default (the field is then not written)
        kwargs[name] = None if v is None else from_json(field[1], field[3], v, "%s.%s" % (where, name))
    return cls(**kwargs)


def to_json(ttype, args, value):
    if value is None:
        return None
    if ttype == TType.I64:
        return str(value)
    if ttype == TType.DOUBLE:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return float(value)
    if ttype == TType.STRING:
        if args == "BINARY":
            return base64.b64encode(value).decode("ascii")
        return value
    if ttype == TType.LIST:
        return [to_json(args[0], args[1], v) for v in value]
    if ttype == TType.SET:
        return [to_json(args[0], args[1], v) for v in sorted(value)]
    if ttype == TType.MAP:
        ktype, kargs, vtype, vargs = args[0], args[1], args[2], args[3]
        keys = sorted(value)
        if ktype == TType.STRING and kargs != "BINARY":
            return {k: to_json(vtype, vargs, value[k]) for k in keys}
        return [[to_json(ktype, kargs, k), to_json(vtype, vargs, value[k])] for k in keys]
    if ttype == TType.STRUCT:
        return struct_to_json(value)
    return value  # bool, i8, i16, i32, enums


def struct_to_json(obj):
    out = {}
    for field in struct_fields(type(obj)):
        v = getattr(obj, field[2], None)
        if v is not None:
            out[field[2]] = to_json(field[1], field[3], v)
    return out


def error_json(exc):
    """{"error": {"type", "message", "fields"}} for any exception a call raised."""
    fields = {}
    if getattr(type(exc), "thrift_spec", None) is not None:  # an IDL exception
        fields = struct_to_json(exc)
        message = exc.__dict__.get("message")
        if not isinstance(message, str):
            message = str(exc)
    else:
        message = getattr(exc, "message", None)
        if not isinstance(message, str) or not message:
            message = str(exc)
        if hasattr(exc, "type"):  # TApplicationException, TTransportException, TProtocolException
            fields["type"] = exc.type
        inner = getattr(exc, "inner", None)  # TTransportException wraps the socket error
        if inner is not None:
            fields["inner"] = "%s: %s" % (type(inner).__name__, inner)
    return {"error": {"type": type(exc).__name__, "message": message, "fields": fields}}


def emit(obj):
    sys.stdout.write(json.dumps(obj, allow_nan=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def decode_headers(headers):
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in headers.items()}


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------

_current = threading.local()  # the connection's input protocol while a call is being handled


class DeliberateError(Exception):
    """What fail() raises for codes other than 1 and 2: undeclared, so the processor answers
    TApplicationException INTERNAL_ERROR. Its log record is shortened to one line."""


class Handler(InteropService.Iface):
    def __init__(self):
        self._lock = threading.Lock()
        self._last_event = ""

    def ping(self):
        return "pong"

    def echo(self, value):
        return value

    def add(self, a, b):
        total = a + b
        if not I64_MIN <= total <= I64_MAX:
            raise TApplicationException(TApplicationException.INTERNAL_ERROR, "add overflows i64")
        return total

    def fail(self, why, code):
        if code == 1:
            raise NotFound(message=why)
        if code == 2:
            raise Invalid(reason=why, code=code)
        raise DeliberateError(why)

    def headers(self):
        proto = getattr(_current, "iprot", None)
        if not isinstance(proto, THeaderProtocol):
            return {}
        received = decode_headers(proto.get_headers())
        # Written into the response frame's headers by THeaderTransport.flush (header clients
        # only; the transport clears them after that flush).
        proto.set_header(b"x-served-region", b"py")
        return received

    def notify(self, event):
        with self._lock:
            self._last_event = event

    def lastNotified(self):
        with self._lock:
            return self._last_event

    def sleep(self, ms):
        time.sleep(max(ms, 0) / 1000.0)


class Processor(InteropService.Processor):
    """Remembers the connection's protocol in a thread local while the generated processor
    dispatches the call, so the handler can read and write THeader headers. TThreadedServer
    serves each connection on its own thread and the handler runs synchronously on it."""

    def process(self, iprot, oprot):
        _current.iprot = iprot
        try:
            return super().process(iprot, oprot)
        finally:
            _current.iprot = None


class Server(TThreadedServer):
    def serve(self):
        self.serverTransport.listen()
        port = self.serverTransport.handle.getsockname()[1]
        sys.stdout.write("listening %d\n" % port)
        sys.stdout.flush()
        while True:
            client = self.serverTransport.accept()
            if client:
                threading.Thread(target=self.handle, args=(client,), daemon=True).start()


class QuietDeliberate(logging.Filter):
    def filter(self, record):
        if record.exc_info and record.exc_info[0] is DeliberateError:
            record.msg = "%s: DeliberateError(%r) -> TApplicationException INTERNAL_ERROR" % (
                record.msg, str(record.exc_info[1]))
            record.exc_info = None
            record.exc_text = None
        return True


def watch_stdin():
    try:
        while sys.stdin.buffer.read1(65536):
            pass
    except Exception:
        pass
    os._exit(0)


def run_server(opts):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("peer.py server: %(levelname)s %(message)s"))
    handler.addFilter(QuietDeliberate())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    if not opts.ignore_stdin:
        threading.Thread(target=watch_stdin, daemon=True).start()

    processor = Processor(Handler())
    socket = TSocket.TServerSocket(host=HOST, port=opts.port)
    if opts.transport == "header":
        default = THeaderSubprotocolID.COMPACT if opts.protocol == "compact" else THeaderSubprotocolID.BINARY
        allowed = (
            THeaderClientType.HEADERS,
            THeaderClientType.FRAMED_BINARY,
            THeaderClientType.UNFRAMED_BINARY,
            THeaderClientType.FRAMED_COMPACT,
            THeaderClientType.UNFRAMED_COMPACT,
        )
        pfactory = THeaderProtocolFactory(allowed_client_types=allowed, default_protocol=default)
        # THeaderProtocol frames by itself; the servers use one protocol for input and output.
        tfactory = TTransport.TTransportFactoryBase()
    else:
        pfactory = (TCompactProtocolAcceleratedFactory() if opts.protocol == "compact"
                    else TBinaryProtocolAcceleratedFactory())
        tfactory = (TTransport.TFramedTransportFactory() if opts.transport == "framed"
                    else TTransport.TBufferedTransportFactory())
    Server(processor, socket, tfactory, pfactory, daemon=True).serve()


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------

CASES = ("ping", "add", "echo", "fail", "headers", "notify", "lastNotified", "sleep")


def parse_case_input(opts):
    """JSON argument -> call arguments; raises InputError (exit 2) on bad input."""
    arg = {}
    if opts.json is not None:
        try:
            arg = json.loads(opts.json)
        except ValueError as e:
            raise InputError("--json is not JSON: %s" % e)
    case = opts.case

    def need(obj, key):
        if not isinstance(obj, dict) or key not in obj:
            raise InputError("case %s needs --json with %r" % (case, key))
        return obj[key]

    if case == "add":
        return {"a": from_json(TType.I32, None, need(arg, "a"), "a"),
                "b": from_json(TType.I64, None, need(arg, "b"), "b")}
    if case == "echo":
        if opts.json is None:
            raise InputError("case echo needs --json with an Everything value")
        return {"value": struct_from_json(Everything, arg, "value")}
    if case == "fail":
        return {"why": from_json(TType.STRING, "UTF8", need(arg, "why"), "why"),
                "code": from_json(TType.I32, None, need(arg, "code"), "code")}
    if case == "headers":
        if not isinstance(arg, dict) or not all(isinstance(v, str) for v in arg.values()):
            raise InputError("case headers takes --json {\"name\": \"value\", ...}")
        if arg and opts.transport != "header":
            raise InputError("request headers need --transport header")
        return {"headers": arg}
    if case == "notify":
        return {"event": from_json(TType.STRING, "UTF8", need(arg, "event"), "event")}
    if case == "sleep":
        return {"ms": from_json(TType.I32, None, need(arg, "ms"), "ms")}
    return {}


def run_case(opts, client, proto, args):
    case = opts.case
    if case == "ping":
        return {"result": client.ping()}
    if case == "add":
        return {"result": str(client.add(args["a"], args["b"]))}
    if case == "echo":
        return {"result": struct_to_json(client.echo(args["value"]))}
    if case == "fail":
        client.fail(args["why"], args["code"])
        return {"result": None}
    if case == "headers":
        for k, v in args["headers"].items():
            proto.set_header(k.encode("utf-8"), v.encode("utf-8"))
        result = client.headers()
        response_headers = decode_headers(proto.get_headers()) if isinstance(proto, THeaderProtocol) else None
        return {"result": dict(sorted(result.items())), "responseHeaders": response_headers}
    if case == "notify":
        client.notify(args["event"])  # oneway: nothing comes back
        return {"result": client.lastNotified()}
    if case == "lastNotified":
        return {"result": client.lastNotified()}
    if case == "sleep":
        start = time.monotonic()
        client.sleep(args["ms"])
        return {"result": None, "elapsedMs": round((time.monotonic() - start) * 1000)}
    raise AssertionError(case)


def run_client(opts):
    try:
        args = parse_case_input(opts)
    except InputError as e:
        sys.stderr.write("peer.py client: %s\n" % e)
        return 2

    sock = TSocket.TSocket(HOST, opts.port)
    if opts.timeout_ms:
        sock.setTimeout(opts.timeout_ms)
    if opts.transport == "header":
        default = THeaderSubprotocolID.COMPACT if opts.protocol == "compact" else THeaderSubprotocolID.BINARY
        # Accept THeader replies only: a server answering in another dialect is an error here.
        proto = THeaderProtocol(sock, allowed_client_types=(THeaderClientType.HEADERS,),
                                default_protocol=default)
        trans = proto.trans
    else:
        trans = (TTransport.TFramedTransport(sock) if opts.transport == "framed"
                 else TTransport.TBufferedTransport(sock))
        proto = (TCompactProtocolAccelerated(trans) if opts.protocol == "compact"
                 else TBinaryProtocolAccelerated(trans))
    client = InteropService.Client(proto)

    try:
        trans.open()
        out = run_case(opts, client, proto, args)
    except (TException, OSError) as e:
        out = error_json(e)
    finally:
        try:
            trans.close()
        except Exception:
            pass
    emit(out)
    return 0


def main(argv):
    parser = argparse.ArgumentParser(prog="peer.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--transport", choices=("header", "framed", "buffered"), required=True)
    common.add_argument("--protocol", choices=("binary", "compact"), default="binary")

    s = sub.add_parser("server", parents=[common], help="serve InteropService on 127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0 (default): an ephemeral port")
    s.add_argument("--ignore-stdin", action="store_true",
                   help="do not exit at stdin EOF (manual runs from a shell)")

    c = sub.add_parser("client", parents=[common], help="run one case against 127.0.0.1:PORT")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--case", choices=CASES, required=True)
    c.add_argument("--json", help="the case's argument, as JSON")
    c.add_argument("--timeout-ms", type=int, default=0, help="socket timeout (0: none)")

    opts = parser.parse_args(argv)
    if opts.mode == "server":
        run_server(opts)
        return 0
    return run_client(opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
