// Package bsonjson writes BSON documents as JSON, straight from the bytes
// the MongoDB Go driver returns (bson.Raw, cursor.Current,
// SingleResult.Raw): no maps, no structs, no reflection, and no allocation
// per document once the destination buffer has grown. Field order is kept
// as stored.
//
// An [Encoder] holds the options and appends one document
// ([Encoder.AppendDocument]) or any Go value the driver can marshal
// ([Encoder.AppendValue]) to a byte slice. A [DocumentWriter] streams a
// cursor to an io.Writer, such as an http.ResponseWriter, as one JSON array
// ([Encoder.NewArrayWriter]) or as NDJSON ([Encoder.NewNDJSONWriter])
// through a bounded buffer, so memory stays flat however long the cursor.
//
// Three dialects are written: plain JSON, the JSON a browser expects, with
// ObjectIDs as hex strings and dates as RFC 3339 strings (the default; the
// whole mapping is on [Encoder]); and relaxed or canonical Extended JSON
// v2, as bson.MarshalExtJSON writes it but for the two exceptions given on
// [Encoder] ([Format]).
//
// Malformed or too deeply nested input never panics: it returns an error
// wrapping [ErrMalformedBSON] or [ErrMaxDepth].
//
// The package needs only the driver's bson package. mongohttp answers every
// request with it; its Collection.Encoder field takes an *Encoder.
package bsonjson
