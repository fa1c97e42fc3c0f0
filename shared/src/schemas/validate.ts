/** Schema validation for every boundary: compiled TypeBox checkers, first error as a JSON-pointer path. */
import type { TSchema, Static } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { ValidationError } from "../errors.ts";

const cache = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = cache.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    cache.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/** Validates without defaults; throws ValidationError naming the first failing field. */
export function assertValid<T extends TSchema>(what: string, schema: T, value: unknown): Static<T> {
  const c = checker(schema);
  if (c.Check(value)) return value as Static<T>;
  const first = c.Errors(value).First();
  throw new ValidationError(what, first?.path ?? "", first?.message ?? "does not match the schema");
}

/** Applies documented defaults to a copy, then validates. */
export function withDefaults<T extends TSchema>(what: string, schema: T, value: unknown): Static<T> {
  const copy = Value.Default(schema, Value.Clone(value));
  return assertValid(what, schema, copy);
}
