// The posts, by id, as the change feed reports them. EventSource starts
// with since=0 (every post, then the changes) and, when the connection
// breaks, reconnects with the id of the last event it saw (Last-Event-ID),
// so the page misses nothing.
"use strict";
const posts = new Map();
const list = document.getElementById("posts");
const status = document.getElementById("status");
const count = document.getElementById("count");

// render redraws the list, newest first, at most once per batch of events.
let scheduled = false;
function schedule() {
  if (!scheduled) {
    scheduled = true;
    setTimeout(render, 50);
  }
}
function render() {
  scheduled = false;
  const sorted = [...posts.values()].sort((a, b) =>
    String(b.published).localeCompare(String(a.published)) || a._id.localeCompare(b._id));
  list.replaceChildren(...sorted.map((p) => {
    const li = document.createElement("li");
    li.id = "post-" + p._id;
    const title = document.createElement("strong");
    title.textContent = p.title; // text, never HTML
    const likes = document.createElement("span");
    likes.className = "likes";
    likes.textContent = " · " + p.likes + " likes";
    li.append(title, likes);
    return li;
  }));
  count.textContent = String(posts.size);
}

const feed = new EventSource("/posts/changes?since=0");
feed.addEventListener("change", (e) => {
  const p = JSON.parse(e.data);
  posts.set(p._id, p);
  schedule();
});
feed.addEventListener("remove", (e) => {
  posts.delete(JSON.parse(e.data)._id);
  schedule();
});
feed.onopen = () => { status.textContent = "live"; };
feed.onerror = () => { status.textContent = "reconnecting…"; };
