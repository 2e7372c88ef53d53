import { describe, expect, it } from "vitest";
import { Metainfo } from "./metainfo.js";

describe("metainfo", () => {
  it("metainfo - writes each kind under its Kitex prefix and reads it back", () => {
    const m = new Metainfo().setTransient("a", "1").setPersistent("b", "2").setBackward("c", "3");
    const headers = m.writeHeaders({ other: "x" }, "transient", "persistent");
    expect(headers).toEqual({ other: "x", RPC_TRANSIT_a: "1", RPC_PERSIST_b: "2" });
    expect(m.writeHeaders({}, "backward")).toEqual({ RPC_BACKWARD_c: "3" });
    const back = new Metainfo().readHeaders(headers, "transient", "persistent");
    expect([back.getTransient("a"), back.getPersistent("b"), back.getBackward("c")]).toEqual(["1", "2", undefined]);
  });

  it("metainfo - prefixes match in any case, keys keep theirs, other headers and kinds are skipped", () => {
    const m = new Metainfo().readHeaders(
      { rpc_transit_UserId: "u", "Rpc_Persist_x": "p", RPC_BACKWARD_b: "b", RPC_TRANSIT_: "empty key", "x-rpc": "no" },
      "transient",
      "persistent",
    );
    expect(Object.fromEntries(m.all("transient"))).toEqual({ UserId: "u" });
    expect(Object.fromEntries(m.all("persistent"))).toEqual({ x: "p" });
    expect(m.all("backward").size).toBe(0);
  });

  it("metainfo - copyFrom copies one kind only", () => {
    const from = new Metainfo().setTransient("t", "1").setPersistent("p", "2");
    const to = new Metainfo().setPersistent("p", "old").copyFrom(from, "persistent");
    expect([to.getTransient("t"), to.getPersistent("p")]).toEqual([undefined, "2"]);
  });
});
