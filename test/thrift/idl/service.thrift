include "shared.thrift"

namespace js meridian.feed
cpp_include "<vector>"

/** One video of a feed. */
struct Video {
  1: required i64 id
  2: string title (go.tag = "json:\"title\"")
  3: optional binary cover
  4: list<string> tags = ["a", "b"];
  5: set<i32> regions
  6: map<string, list<double>> scores
  7: shared.Status status = shared.Status.ACTIVE
  8: shared.Timestamp created = 0x10
  9: bool featured = true
  10: i8 rank = -3
  11: i16 width
  12: double ratio = 1.5e0
  13: uuid key
  14: Author author
}

struct Author { 1: string name; 2: optional Author mentor }

union Content {
  1: Video video
  2: string text
}

const i32 MAX_PAGE = 100
const list<string> DEFAULT_TAGS = ["x", 'y']
const map<string, i32> LIMITS = { "a": 1, "b": MAX_PAGE }
const Video EXAMPLE = { "id": 1, "title": "hello" }
const shared.Status DEFAULT_STATUS = 2

exception Throttled {
  1: i32 retryAfterMs
} (kitex.error = "true")

service FeedService extends shared.BaseService {
  /** Reads one page. */
  list<Video> getFeed(1: string user, 2: i32 page = 1) throws (1: shared.NotFound notFound, 2: Throttled throttled),
  oneway void track(1: string event);
  void reset()
} (api.version = "2")
