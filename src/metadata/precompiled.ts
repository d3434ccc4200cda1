import { CompiledQuery, type Compilable, type Kysely } from 'kysely';

/**
 * A read query that Kysely builds and compiles once, then runs with new parameter values.
 *
 * Building a query with Kysely's builder costs about 30 µs of JavaScript per call, four
 * times the indexed SQLite lookup it produces (bench profile of manifest GET by tag). The
 * hot read paths — manifest GET/HEAD, blob HEAD/GET — pay that on every request, so they
 * build once with placeholder values and swap the real ones into the compiled parameters.
 */
export function precompiled<DB, Args extends readonly string[], Row>(
  db: Kysely<DB>,
  build: (...args: Args) => Compilable<Row>,
): (...args: Args) => Promise<Row[]> {
  const run = precompiledOn<DB, Args, Row>(build);
  return (...args: Args) => run(db, ...args);
}

/**
 * As `precompiled`, run on the connection or transaction given with each call (a write in
 * core's transaction: the tag history row of every push). Arguments are placeholders when
 * compiling; at run time any bindable value (a number, null) may take their place.
 */
export function precompiledOn<DB, Args extends readonly string[], Row>(
  build: (...args: Args) => Compilable<Row>,
): (db: Kysely<DB>, ...args: { [K in keyof Args]: unknown }) => Promise<Row[]> {
  let compiled: { sql: string; parameters: readonly unknown[]; slots: (number | undefined)[] } | undefined;
  return async (db, ...args) => {
    compiled ??= compile(build, args.length);
    const parameters = compiled.parameters.map((value, i) => {
      const slot = compiled!.slots[i];
      return slot === undefined ? value : args[slot];
    });
    const result = await db.executeQuery<Row>(CompiledQuery.raw(compiled.sql, parameters));
    return result.rows;
  };
}

function compile<Args extends readonly string[], Row>(build: (...args: Args) => Compilable<Row>, arity: number) {
  const markers = Array.from({ length: arity }, (_, i) => `\u0000berth-parameter-${i}\u0000`);
  const { sql, parameters } = build(...(markers as unknown as Args)).compile();
  const slots = parameters.map((value) => {
    const index = markers.indexOf(value as string);
    return index >= 0 ? index : undefined;
  });
  // Each argument must land in exactly one parameter, or the swap would bind the wrong values.
  for (let i = 0; i < arity; i++) {
    const uses = slots.filter((slot) => slot === i).length;
    if (uses !== 1) throw new Error(`precompiled query uses argument ${i} ${uses} times: ${sql}`);
  }
  return { sql, parameters, slots };
}
