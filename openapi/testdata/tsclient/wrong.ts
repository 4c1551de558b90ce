// Must not compile: TestTypeScriptClient checks that tsc refuses it, so
// that a client typed as any (a document the generator could not read)
// cannot pass for a typed one.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

const api = createClient<paths, "application/json" | "application/problem+json">({ baseUrl: "http://127.0.0.1:8080" });

export async function listIsNotOne(): Promise<components["schemas"]["Users"]> {
  const { data, error } = await api.GET("/users");
  if (error) throw new Error(error.detail);
  return data; // WRONG: a list
}

export async function likesIsANumber(id: string): Promise<void> {
  await api.PATCH("/posts/{id}", { params: { path: { id } }, body: { likes: "many" } }); // WRONG: likes is an integer
}
