// Uses the client generated from the example's OpenAPI document as an
// application would: no casts, no type guards. TestTypeScriptClient
// generates generated/api.d.ts and runs tsc --noEmit on this file.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

type Post = components["schemas"]["Post"];
type User = components["schemas"]["Users"];

// JSON answers and problems: lists are also served as NDJSON, which a
// fetch client does not parse.
const api = createClient<paths, "application/json" | "application/problem+json">({ baseUrl: "http://127.0.0.1:8080" });

export async function listUsers(): Promise<string[]> {
  const { data, error } = await api.GET("/users", { params: { query: { limit: 10, sort: ["-name"] } } });
  if (error) throw new Error(error.detail);
  const users: User[] = data;
  return users.map((u) => u._id);
}

export async function onePost(id: string): Promise<Post> {
  const { data, error } = await api.GET("/posts/{id}", { params: { path: { id } } });
  if (error) throw new Error(error.detail);
  return data;
}

export async function postsOfAUser(id: string): Promise<Post[]> {
  const { data, error } = await api.GET("/users/{id}/posts", { params: { path: { id }, query: { limit: 5 } } });
  if (error) throw new Error(error.detail);
  return data;
}

// A created post is a Post (undefined under Prefer: return=minimal); a
// stream of posts goes to POST /posts/bulk, so no {inserted} joins it.
export async function createPost(authorID: string, title: string): Promise<Post | undefined> {
  const { data, error } = await api.POST("/posts", { body: { author_id: authorID, title } });
  if (error) throw new Error(error.detail);
  return data;
}

export async function createPosts(authorID: string, titles: string[]): Promise<number> {
  const { data, error } = await api.POST("/posts/bulk", {
    body: { author_id: authorID, title: titles[0] ?? "" },
    bodySerializer: () => titles.map((title) => JSON.stringify({ author_id: authorID, title })).join("\n"),
    headers: { "Content-Type": "application/x-ndjson" },
  });
  if (error) throw new Error(error.detail);
  return data.inserted;
}

// undefined: the answer to Prefer: return=minimal (204) has no body.
export async function likePost(id: string, likes: number): Promise<Post | undefined> {
  const { data, error } = await api.PATCH("/posts/{id}", { params: { path: { id } }, body: { likes } });
  if (error) throw new Error(error.detail);
  return data;
}
