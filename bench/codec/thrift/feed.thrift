// Messages of the Thrift codec benchmark: the feed of bench/codec/proto/feed.proto (the `feed`
// and `page` fixtures of bench/codec/data.ts) in Thrift IDL, with the same field ids. int64 and
// uint64 are i64, uint32 is i32 (the values fit), bytes is binary, repeated is list.
namespace js bench

struct User {
  1: i64 id
  2: string name
  3: string region
  4: list<string> tags
}

struct Video {
  1: i64 id
  2: string title
  3: string url
  4: i32 duration_ms
  5: double score
  6: bool hd
  7: User author
  8: list<i32> stats
  9: map<string, string> labels
  10: binary cover
}

struct FeedResponse {
  1: list<Video> items
  2: string cursor
  3: i64 server_time
}

// The RPC benchmark's service (bench/rpc/thrift-peer.ts): Ping as bench/codec/proto/feed.proto has
// it (int64 is i64), echoed, or answered with the feed.
struct Ping {
  1: string region
  2: i64 seq
  3: string consistency
}

service Echo {
  Ping Echo(1: Ping ping)
  FeedResponse Feed(1: Ping ping)
}
