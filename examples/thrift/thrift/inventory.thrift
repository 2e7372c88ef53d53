/** A small inventory service, to show Thrift on Meridian. */
namespace js example.inventory

enum Warehouse {
  EAST = 1,
  WEST = 2
}

struct Item {
  1: required string sku
  2: i32 count = 0
  3: optional Warehouse warehouse
}

/** Asked for a SKU the inventory does not hold. */
exception UnknownSku {
  1: string message
  2: string sku
}

service Inventory {
  /** How many of an item are in stock. */
  Item lookup(1: string sku) throws (1: UnknownSku unknown) (meridian.idempotency = "NO_SIDE_EFFECTS")
  /** Adds to the stock; returns the new count. */
  i32 restock(1: string sku, 2: i32 count = 1, 3: Warehouse warehouse = Warehouse.EAST)
  /** Fire and forget: the server counts it, the caller does not wait. */
  oneway void audit(1: string note)
  i32 audits()
}
