package otelmongohttp

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// Prometheus returns a MeterProvider whose metrics the returned handler
// serves in the Prometheus text format, through the OpenTelemetry
// Prometheus exporter: http.server.request.duration becomes
// http_server_request_duration_seconds, http.route the label http_route.
// The registry is the provider's own, so nothing is registered with
// prometheus.DefaultRegisterer and several providers can live in one
// process. The text format has no exemplars, so the provider keeps none
// (the SDK's default keeps one per measurement of a traced request, at a
// cost). Shut the provider down when done.
func Prometheus() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter),
		sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
