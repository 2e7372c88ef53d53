/**
 * Shared definitions, included by service.thrift.
 */
namespace go shared
namespace * meridian.shared

typedef i64 Timestamp

enum Status {
  ACTIVE = 1,
  DISABLED, // 2
  DELETED = 10
}

struct Base {
  1: optional string logId = "",
  2: optional string caller,
  255: optional map<string, string> extra,
}

exception NotFound {
  1: required string key
  2: string message = "not found"
}

service BaseService {
  string ping(1: string text)
}
