// Package openapi holds the tests of mongohttp's OpenAPI documents against
// independent tools: the document of the example service validates as
// OpenAPI 3.1, every request and answer of a suite over its routes is
// checked against it, and a client generated from it talks to the service.
// It is a module of its own so that those tools stay out of mongohttp's
// dependencies.
package openapi
