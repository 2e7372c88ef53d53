/**
 * The latency and partition proxy for the links between regions: TCP links with a one-way delay
 * that can be blackholed or dropped, and a SOCKS5 router that sends each connection of a process
 * through the link to its destination (per sender, per destination).
 */
export { createLink, parseHostPort } from "./link.js";
export type { Link, LinkOptions, LinkState, LinkStats } from "./link.js";
export { createSocksRouter } from "./socks.js";
export type { SocksRouter, SocksRouterOptions } from "./socks.js";
