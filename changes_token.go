package mongohttp

import (
	"crypto/hmac"
	"crypto/sha256"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A resume token of a change feed is base64url (no padding) of
//
//	version (1 byte) | BSON {"w": watermark, "a": snapshot anchor} | MAC (16 bytes)
//
// "w" is a time in Unix milliseconds on the clock of the instance that made
// the token: every write that became visible before it has been delivered,
// as that state or a later one. Resuming re-reads every version made since
// w minus the feed's Overlap (see ChangeFeed), which absorbs writes still
// in flight at w and the skew between the instances' clocks. "a", present
// only while a since=0 snapshot is being sent, is the _id of the last
// document of the snapshot delivered: resuming continues the snapshot after
// it, then catches up from w.
//
// MAC is HMAC-SHA256 under the policy's CursorKey over a label, the
// collection (database and name), the policy's name, the digests of the
// request's base filter and client filter, and the projection, then the
// version and BSON bytes, cut to 16 bytes. A token therefore resumes only
// the feed it was made for: another collection, scope (BaseFilter), policy,
// filter or fields= fails the MAC, like a damaged token.
const changeTokenVersion = 1

// changeToken is the BSON inside a resume token.
type changeToken struct {
	W      int64         `bson:"w"`
	Anchor bson.RawValue `bson:"a,omitempty"`
}

// hasAnchor reports whether the token continues a snapshot.
func (t changeToken) hasAnchor() bool { return t.Anchor.Type != 0 }

// at is the watermark as a time.
func (t changeToken) at() time.Time { return time.UnixMilli(t.W) }

// feedBinding is what a token is bound to: everything that decides which
// documents a subscription sees and how.
type feedBinding struct {
	key    []byte
	scope  string // database.collection
	policy string
	base   []byte // SHA-256 of the BaseFilter's result
	filter []byte // SHA-256 of the client's filter
	fields []byte // SHA-256 of the projection
}

func digestOf(d bson.D) ([]byte, error) {
	if d == nil {
		d = bson.D{}
	}
	b, err := bson.Marshal(d)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

func (b *feedBinding) mac(msg []byte) []byte {
	h := hmac.New(sha256.New, b.key)
	h.Write([]byte("mongohttp changes\x00"))
	for _, part := range [][]byte{[]byte(b.scope), []byte(b.policy), b.base, b.filter, b.fields} {
		h.Write([]byte{byte(len(part) >> 8), byte(len(part))})
		h.Write(part)
	}
	h.Write(msg)
	return h.Sum(nil)[:cursorMACLen]
}

// sign makes the token for t.
func (b *feedBinding) sign(t changeToken) (string, error) {
	payload, err := bson.Marshal(t)
	if err != nil {
		return "", err
	}
	msg := make([]byte, 0, 1+len(payload)+cursorMACLen)
	msg = append(msg, changeTokenVersion)
	msg = append(msg, payload...)
	msg = append(msg, b.mac(msg)...)
	return cursorEncoding.EncodeToString(msg), nil
}

// errTokenInvalid is the answer to a token this feed did not make (a new
// *Error each time: an ErrorFunc may edit the one it is given).
func errTokenInvalid() error {
	return ErrInvalidResumeToken.Detailf("the resume token is not valid for this feed: it is damaged, was made for another collection, scope, filter or fields, or the service's cursor key changed; start again with since=0")
}

// tokenShaped reports whether s can be a token at all, which is checked
// before any work (the base filter may query) is done for the request.
func tokenShaped(s string) bool {
	if len(s) > MaxCursorLength {
		return false
	}
	raw, err := decodeTokenText(s)
	return err == nil && len(raw) >= 1+5+cursorMACLen && raw[0] == changeTokenVersion
}

// read checks a token and returns what it holds. Anything that is not a
// token this binding made, byte for byte, is ErrInvalidResumeToken; a
// token older than retention is ErrResumeExpired.
func (b *feedBinding) read(s string, now time.Time, retention time.Duration) (changeToken, error) {
	invalid := errTokenInvalid()
	if !tokenShaped(s) {
		return changeToken{}, invalid
	}
	raw, _ := decodeTokenText(s)
	msg, sum := raw[:len(raw)-cursorMACLen], raw[len(raw)-cursorMACLen:]
	if !hmac.Equal(sum, b.mac(msg)) {
		return changeToken{}, invalid
	}
	var t changeToken
	if err := bson.Unmarshal(msg[1:], &t); err != nil || t.W <= 0 {
		return changeToken{}, invalid
	}
	if t.hasAnchor() {
		if b := bracketOfKey(t.Anchor); b == bracketOther || b == bracketRegex || b == bracketNull || b == bracketEmpty {
			return changeToken{}, invalid
		}
	}
	if now.Sub(t.at()) > retention {
		return changeToken{}, ErrResumeExpired.Detailf("the resume token is older than the feed's history (%s); start again with since=0", retention)
	}
	return t, nil
}
