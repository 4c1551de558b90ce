package otelmongohttp

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// command is a database command between its start and end events.
type command struct {
	span  trace.Span // nil outside a traced request
	key   commandKey
	attrs *commandAttrs
}

// commandKey identifies the attributes of a command.
type commandKey struct {
	operation, collection, namespace, connection string
	errorType, status                            string
}

// commandAttrs are a command's span name and attributes, for its span and
// its metric, with the options that carry them, made once.
type commandAttrs struct {
	name  string
	list  []attribute.KeyValue
	start []trace.SpanStartOption
	opts  []metric.RecordOption
}

func (o *Observer) commandAttrs(key commandKey) *commandAttrs {
	if ca, ok := o.commandSets.Load(key); ok {
		return ca
	}
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs, semconv.DBSystemNameMongoDB, semconv.DBOperationName(key.operation), semconv.DBNamespace(key.namespace))
	if key.collection != "" {
		attrs = append(attrs, semconv.DBCollectionName(key.collection))
	}
	if host, port, ok := serverOf(key.connection); ok {
		attrs = append(attrs, semconv.ServerAddress(host), semconv.ServerPort(port))
	}
	if key.errorType != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(key.errorType))
	}
	if key.status != "" {
		attrs = append(attrs, semconv.DBResponseStatusCode(key.status))
	}
	name := key.operation
	if key.collection != "" {
		name += " " + key.collection
	}
	return o.commandSets.LoadOrStore(key, &commandAttrs{
		name:  name,
		list:  attrs,
		start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)},
		opts:  []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(slices.Clone(attrs)...))}, // NewSet sorts its argument
	})
}

// CommandMonitor returns the monitor that makes a client span of each
// command sent under a traced context and times every command for
// db.client.operation.duration. mongohttp.ConnectConfig installs it when
// the Observer is Config.Observer.
func (o *Observer) CommandMonitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: o.commandStarted,
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			o.commandFinished(ctx, &e.CommandFinishedEvent, nil)
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			o.commandFinished(ctx, &e.CommandFinishedEvent, e.Failure)
		},
	}
}

func (o *Observer) commandStarted(ctx context.Context, e *event.CommandStartedEvent) {
	c := command{key: commandKey{
		operation: e.CommandName, collection: o.collectionOf(e), namespace: e.DatabaseName,
		connection: connectionServer(e.ConnectionID),
	}}
	c.attrs = o.commandAttrs(c.key)
	if trace.SpanFromContext(ctx).IsRecording() {
		// The command document is not recorded: it holds the query's values.
		_, c.span = o.tracer.Start(ctx, c.attrs.name, c.attrs.start...)
	}
	if rc, _ := ctx.Value(requestContextKey{}).(*requestContext); rc != nil {
		rc.mu.Lock()
		free := !rc.busy
		if free {
			rc.inFlight, rc.inFlightID, rc.busy = c, e.RequestID, true
		}
		rc.mu.Unlock()
		if free {
			return
		}
	}
	kept := c // c itself stays on the stack
	o.commands.Store(e.RequestID, &kept)
}

// finished returns the command of a finished event and forgets it.
func (o *Observer) finished(ctx context.Context, requestID int64) (command, bool) {
	if rc, _ := ctx.Value(requestContextKey{}).(*requestContext); rc != nil {
		rc.mu.Lock()
		mine := rc.busy && rc.inFlightID == requestID
		c := rc.inFlight
		if mine {
			rc.inFlight, rc.busy = command{}, false
		}
		rc.mu.Unlock()
		if mine {
			return c, true
		}
	}
	v, ok := o.commands.LoadAndDelete(requestID)
	if !ok {
		return command{}, false
	}
	return *v.(*command), true
}

func (o *Observer) commandFinished(ctx context.Context, e *event.CommandFinishedEvent, failure error) {
	c, ok := o.finished(ctx, e.RequestID)
	if !ok {
		return
	}
	attrs := c.attrs
	if failure != nil {
		key := c.key
		key.errorType, key.status = classify(failure)
		attrs = o.commandAttrs(key)
		if c.span != nil {
			c.span.SetAttributes(attrs.list[len(c.attrs.list):]...)
			c.span.SetStatus(codes.Error, key.errorType)
		}
	}
	if c.span != nil {
		rc, _ := ctx.Value(requestContextKey{}).(*requestContext)
		if rc == nil || !rc.deferEnd(c.span, time.Now()) {
			c.span.End()
		}
	}
	o.opDuration.Inst().Record(ctx, e.Duration.Seconds(), attrs.opts...) // a kept slice: no allocation
}

// connectionServer returns the server part of a driver connection id
// ("host:port[-7]"), which names the connection too.
func connectionServer(connID string) string {
	if i := strings.LastIndexByte(connID, '['); i > 0 {
		return connID[:i]
	}
	return connID
}

// collectionOf returns the collection a command names: the value of its
// first element for most commands, the "collection" field for getMore.
func (o *Observer) collectionOf(e *event.CommandStartedEvent) string {
	var v bson.RawValue
	if e.CommandName == "getMore" {
		v = e.Command.Lookup("collection")
	} else {
		elem, err := e.Command.IndexErr(0)
		if err != nil {
			return ""
		}
		v = elem.Value()
	}
	// A string's bytes are its length, the characters and a NUL.
	if v.Type != bson.TypeString || len(v.Value) < 5 {
		return ""
	}
	return o.collections.intern(v.Value[4 : len(v.Value)-1])
}

// serverOf parses a server's address ("host:port").
func serverOf(server string) (string, int, bool) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, false
	}
	return host, p, true
}

// classify names a command's failure for error.type, and the server's
// error code for db.response.status_code when there is one.
func classify(err error) (errorType, status string) {
	var ce mongo.CommandError
	switch {
	case errors.As(err, &ce):
		errorType = ce.Name
		if errorType == "" {
			errorType = "CommandError"
		}
		return errorType, strconv.Itoa(int(ce.Code))
	case mongo.IsTimeout(err):
		return "timeout", ""
	case mongo.IsNetworkError(err):
		return "network", ""
	case errors.Is(err, context.Canceled):
		return "canceled", ""
	}
	return "_OTHER", ""
}

// ObservePool reports the pool statistics of c (see mongohttp.PoolStats)
// as db.client.connection.count, by state ("idle", "used"; their sum is
// the connections open), and db.client.connection.pending_requests (the
