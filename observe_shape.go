package mongohttp

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Shape returns the query's shape: the fields and operators of the
// filter, the sort, the projection; never values. It is computed at each
// call, so an observer that does not ask pays nothing for it. The zero
// QueryShape when the request was refused before its query was parsed.
func (r *RequestReport) Shape() QueryShape {
	if !r.hasQuery {
		return QueryShape{}
	}
	if r.query == nil && r.filter != nil {
		return QueryShape{Filter: filterShape(r.filter, "", nil)}
	}
	return shapeOf(r.query, r.projection)
}

// QueryShape is the shape of a query, without its values, which may be
// personal data: the same shape for ?age[gte]=30 and ?age[gte]=40.
type QueryShape struct {
	// Filter lists the filter's conditions as "field operator" ("age $gte",
	// "name $eq"), and logical operators alone ("$or"), in the order they
	// first appear, each once. The base filter is not included.
	Filter []string
	// Sort lists the sort keys, "-" for descending ("-age", "_id").
	Sort []string
	// Fields lists the fields asked for with ?fields=.
	Fields []string
	// Skip is true when the request skipped documents.
	Skip bool
	// Count is the count asked for.
	Count CountMode
}

// String returns the shape on one line, for logs and span attributes:
// "filter=age $gte,name $eq sort=-age,_id fields=name count=exact".
func (s QueryShape) String() string {
	var b strings.Builder
	part := func(name string, items ...string) {
		if len(items) == 0 {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name)
		b.WriteByte('=')
		for i, item := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(item)
		}
	}
	b.Grow(64)
	part("filter", s.Filter...)
	part("sort", s.Sort...)
	part("fields", s.Fields...)
	if s.Skip {
		part("skip", "yes")
	}
	if s.Count != CountNone {
		part("count", string(s.Count))
	}
	return b.String()
}

// shapeOf computes the shape of a parsed query, or of FindOne's id lookup
// and projection when q is nil.
func shapeOf(q *Query, projection bson.D) QueryShape {
	var s QueryShape
	if q == nil {
		s.Filter = []string{"_id $eq"}
		s.Fields = inclusions(projection)
		return s
	}
	s.Filter = filterShape(q.CountFilter, "", s.Filter)
	for _, e := range q.Sort {
		if n, ok := e.Value.(int32); ok && n < 0 {
			s.Sort = append(s.Sort, "-"+e.Key)
		} else {
			s.Sort = append(s.Sort, e.Key)
		}
	}
	s.Fields = inclusions(q.Projection)
	s.Skip = q.Skip > 0
	s.Count = q.Count
	return s
}

// inclusions lists the fields a projection includes; the exclusion of
// hidden fields is the policy's, not the client's.
func inclusions(projection bson.D) []string {
	var out []string
	for _, e := range projection {
		if n, ok := e.Value.(int32); ok && n == 1 {
			out = append(out, e.Key)
		}
	}
	return out
}

// filterShape appends the conditions of filter d, whose fields are under
// prefix (inside $elemMatch), to out.
func filterShape(d bson.D, prefix string, out []string) []string {
	add := func(s string) {
		for _, have := range out {
			if have == s {
				return
			}
		}
		out = append(out, s)
	}
	for _, e := range d {
		if strings.HasPrefix(e.Key, "$") {
			add(e.Key)
			if a, ok := e.Value.(bson.A); ok {
				for _, v := range a {
					if sub, ok := v.(bson.D); ok {
						out = filterShape(sub, prefix, out)
					}
				}
			}
			continue
		}
		field := prefix + e.Key
		ops, ok := e.Value.(bson.D)
		if !ok || len(ops) == 0 || !strings.HasPrefix(ops[0].Key, "$") {
			add(field + " $eq")
			continue
		}
		for _, op := range ops {
			add(field + " " + op.Key)
			sub, ok := op.Value.(bson.D)
			switch {
			case !ok:
			case op.Key == "$elemMatch":
				out = filterShape(sub, field+".", out)
			case op.Key == "$not":
				out = filterShape(bson.D{{Key: e.Key, Value: sub}}, prefix, out)
			}
		}
	}
	return out
}
