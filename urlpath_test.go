package mongohttp

import "testing"

func TestCanonicalPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/posts", "/posts"},
		{"/pos%74s", "/posts"},
		{"/%70osts", "/posts"},
		{"/%70%6F%73%74%73", "/posts"},
		{"/a%7eb%2D%5F", "/a~b-_"},
		{"/a%2fb", "/a%2Fb"},
		{"/a%2Fb", "/a%2Fb"},
		{"/%2e%2E/x", "/%2E%2E/x"},
		{"/caf%c3%a9", "/caf%C3%A9"},
		{"/a%20b", "/a%20b"},
		{"/bad%zz", "/bad%zz"},
		{"/end%4", "/end%4"},
		{"/end%", "/end%"},
		{"", ""},
	} {
		if got := canonicalPath(tt.in); got != tt.want {
			t.Errorf("canonicalPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
