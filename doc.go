// Package mongohttp serves MongoDB collections as JSON from any net/http
// service: one shared client, handlers that stream documents straight from
// raw BSON, a deny-by-default query language, and problem+json errors.
//
// A complete service, which shuts down cleanly on Ctrl-C or SIGTERM:
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	client, err := mongohttp.Connect(ctx, "mongodb://localhost:27017")
//	if err != nil { log.Fatal(err) }
//
//	users := mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{
//		Client: client,
//		Coll:   client.Database("app").Collection("users"),
//		Policy: mongohttp.Policy{Filter: map[string]mongohttp.Type{"age": mongohttp.Int}},
//	}))
//	mux := http.NewServeMux()
//	mux.Handle("GET /users", users.Find())
//	mux.Handle("GET /users/{id}", users.FindOne())
//	mux.Handle("GET /healthz", &mongohttp.HealthHandler{Client: client})
//
//	srv := &http.Server{Addr: ":8080", Handler: mux,
//		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute}
//	go func() {
//		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
//			log.Print(err)
//			stop()
//		}
//	}()
//	<-ctx.Done()
//	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
//	defer cancel()
//	srv.Shutdown(shutCtx) // finish the requests in flight,
//	client.Close(shutCtx) // then close the client
//
// The server's timeouts cut slow clients; [docs/serving.md] explains each,
// and how to bound writes without cutting long exports.
//
// # How a read is served
//
// A [Collection] declares once how a collection is served: its [Policy]
// (the fields and operators clients may filter, sort, project and write),
// hooks, limits and read settings. [New] checks the declaration before any
// request and returns a [Resource], whose methods ([Resource.Find],
// [Resource.FindOne], [Resource.Aggregate], …) make the http.Handlers.
// Then each request of Find goes through:
//
//  1. admission: the handler's and the client's [Admission] bounds admit
//     it, queue it, or refuse it with 503 and Retry-After;
//  2. parse: the policy's compiled [QueryParser] turns the query string
//     into a [Query] that references only what the policy allows, or
//     refuses it with a 400 naming the parameter;
//  3. base filter: [Collection].BaseFilter adds the server-side condition
//     clients cannot lift (a tenant, a soft delete);
//  4. query: one find command under the request's context and MaxTime,
//     so a client that leaves cancels it;
//  5. look-ahead: Find holds up to [Collection].Lookahead bytes of raw
//     BSON, so an error before then is still a clean problem answer;
//  6. encode: a [bsonjson.Encoder] writes each document from raw BSON to
//     JSON (or NDJSON), after [Collection].Transform when T is not
//     bson.Raw, with Link headers and a signed cursor for the next page.
//
// # How a write is served
//
// [Resource.Insert], [Resource.Replace], [Resource.Patch] and
// [Resource.Delete] (mounted with [Methods]) go through admission as reads
// do, then:
//
//  1. decode: the JSON body, bounded in size and depth, into BSON;
//  2. write policy: only fields of [Policy].Write, with the types and
//     [Policy].Constraints declared there; anything else is a 400 or 422;
//  3. hooks: [Collection].Validate may refuse the document with 422, and
//     [Collection].Prepare completes it (timestamps, owner);
//  4. precondition: If-Match names the stored version (its ETag), and
//     If-None-Match: * asks for a creation; the check and the write are
//     one server operation, so of two clients holding the same ETag one
//     succeeds and the other gets 412;
//  5. write: scoped by the base filter, answered with the stored document
//     and its new ETag.
//
// # Errors
//
// Every error a handler answers with is an RFC 9457 problem document
// (application/problem+json) with a stable "code": an [Error]. The
// package's sentinels (ErrNotFound, ErrFieldNotAllowed, …) are *Error
// values that errors returned by mongohttp wrap, so compare with
// errors.Is; [AsError] tells what a client would see for any error, and
// [WriteError] answers with it. Driver and server messages never reach
// clients. See [docs/errors.md].
//
// # Observability
//
// An [Observer] (on [Config], or [Collection].Observer) receives a
// [RequestReport] of every request a handler answers, for metrics, traces
// and access logs; the otelmongohttp module adapts it to OpenTelemetry. [StatsHandler] serves
// the pool and admission statistics. See [docs/observability.md].
//
// # Clients
//
// [Connect] and [ConnectConfig] build a [Client] with pool statistics and a
// client-wide admission bound; [Wrap] adopts a *mongo.Client you built
// yourself. An empty connection string means MONGODB_URI, and none at all is
// [ErrNoURI]: nothing in the package dials a server nobody named. Each is
// for one thing:
//
//   - [Collection].Client: the client a collection's handlers use. It is
//     the only one they use.
//   - [Client.Middleware], [WithClient] and [ClientFrom] carry a client in
//     request contexts: for [HealthHandler] and [StatsHandler] without a
//     Client field, and for handlers of your own.
//   - [Default] and [SetDefault]: a process-wide client created on first
//     use from MONGODB_URI, for code that has no client passed to it (a
//     CLI, a test helper). Nothing in the package calls Default.
//
// HealthHandler and StatsHandler use their Client field, else the client in
// the request's context, else answer 500 "internal" and log at Error level
// that no client is configured. Nothing in the package falls back to
// Default on its own, so a forgotten client never becomes a silent
// connection to MONGODB_URI.
//
// # More
//
// [API] serves the OpenAPI 3.1 document of the routes mounted
// ([docs/openapi.md]); [Resource.EnsureIndexes] creates the indexes a
// declaration needs. [Resource.Changes] serves a collection's change feed,
// as Server-Sent Events or a pull form, under the same policy as Find and
// resumable across instances ([docs/changes.md]). The docs directory holds
// the rest: the query language
// for API clients ([docs/query.md]), writes and preconditions
// ([docs/writes.md]), paging and tokens ([docs/paging.md]), relations
// ([docs/relations.md]), serving safely and at scale ([docs/serving.md]),
// performance ([docs/performance.md]) and the encoder's mapping
// ([docs/encoding.md]).
//
// [docs/changes.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/changes.md
// [docs/serving.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/serving.md
// [docs/errors.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/errors.md
// [docs/observability.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/observability.md
// [docs/openapi.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/openapi.md
// [docs/query.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/query.md
// [docs/writes.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/writes.md
// [docs/paging.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/paging.md
// [docs/relations.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/relations.md
// [docs/performance.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/performance.md
// [docs/encoding.md]: https://github.com/mongohttp/mongohttp/blob/main/docs/encoding.md
package mongohttp
