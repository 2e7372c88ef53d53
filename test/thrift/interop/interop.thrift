/**
 * Interop IDL: Meridian (TypeScript) against Apache Thrift's Python library.
 * Covers every field kind; the Python side is gen-py/ (regenerate with regen.sh)
 * and peer.py. Identifiers are valid in Python and TypeScript alike.
 */
namespace py meridian_interop
namespace js meridian.interop

/** A typedef: milliseconds since the epoch, carried as i64. */
typedef i64 Millis

/** A const (also used as a default value below). */
const i32 DEFAULT_LIMIT = 7
const string GREETING = "hello"

enum Color {
  RED = 1,
  GREEN = 2,
  BLUE = 10
}

struct Point {
  1: i32 x
  2: i32 y
}

/** Recursive through an optional field. */
struct Link {
  1: string label
  2: optional Link next
}

union Shape {
  1: Point point
  2: string label
  3: double radius
}

/** One field of every kind. */
struct Everything {
  1: bool flag
  2: i8 tiny
  3: i16 small
  4: i32 medium
  5: i64 big
  6: double ratio
  7: string text
  8: binary blob
  9: list<i32> numbers
  10: set<string> tags
  11: map<string, i64> counts
  12: map<i32, Point> pointsById
  13: Point origin
  14: optional Link chain
  15: Color color
  16: Shape shape
  17: required string id
  18: optional string note
  19: i32 limit = DEFAULT_LIMIT
  20: string greeting = "hello"
  21: Millis createdAt
  22: list<Point> path
  23: list<Color> palette
  24: map<string, list<string>> groups
  25: optional binary extra
  26: Color defaultColor = Color.GREEN
}

exception NotFound {
  1: string message
}

exception Invalid {
  1: string reason
  2: i32 code
}

service BaseService {
  string ping()
}

service InteropService extends BaseService {
  /** Returns its argument unchanged. */
  Everything echo(1: Everything value)
  i64 add(1: i32 a, 2: i64 b)
  /** code 1: NotFound(message = why); code 2: Invalid(reason = why, code); else an undeclared error. */
  void fail(1: string why, 2: i32 code) throws (1: NotFound notFound, 2: Invalid invalid)
  /** THeader only: the request headers the server received; sets response header x-served-region. */
  map<string, string> headers()
  oneway void notify(1: string event)
  /** The last event recorded by notify ("" if none). */
  string lastNotified()
  void sleep(1: i32 ms)
}
