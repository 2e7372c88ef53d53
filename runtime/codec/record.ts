/**
 * Makes the constructor that generated code creates a message's default object with (`create()`,
 * and every decode): `init` sets the fields on `this`, and the objects are plain ones whose
 * prototype is Object.prototype, as an object literal's are, but made by `new`.
 *
 * Why not a literal: V8 watches each object literal in the code (an allocation site), and when a
 * garbage collection finds nearly all of a literal's objects alive (a burst of requests held by
 * handlers at a fresh process, as after a deploy), it creates every later object of that literal
 * in the old generation, for the life of the process. Messages die young all the same, so only
 * full collections reclaim them, and every store of a young object into one pays a write
 * barrier: a server whose first burst did that to its request and response types spent a quarter
 * more CPU per call from then on (docs/profile.md, "Sixth pass"). V8 never does that to an object
 * made by `new`.
 */
export function messageRecord<T extends object>(init: (this: T) => void): new () => T {
  (init as { prototype: object }).prototype = Object.prototype;
  return init as unknown as new () => T;
}
