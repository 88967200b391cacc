// Package deploy holds no code: it checks, in its tests, the deployment
// files beside it with real validators and no downloads — every Kubernetes
// manifest in k8s/ strictly decoded into the k8s.io/api types, the
// Prometheus alert rules in prometheus/rules/ parsed by Prometheus's own
// rule-file parser (PromQL included), the compose file in compose/ decoded
// strictly into the keys it uses, and the Grafana dashboard's queries
// parsed as PromQL — plus the references between them (selectors,
// budgets, autoscalers, probes on /healthz, mounted files, environment
// variables recon reads, metric names recon registers).
package deploy
