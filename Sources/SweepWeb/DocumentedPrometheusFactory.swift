import Coordinator
public import CoreMetrics
public import Prometheus

/// A swift-metrics factory onto a Prometheus registry that gives isosweep's metrics their HELP
/// text (swift-prometheus's own factory leaves it empty, which `promtool check metrics` rejects).
public struct DocumentedPrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let fallback: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.fallback = PrometheusMetricsFactory(registry: registry)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let help = CoordinatorMetrics.help[label] else {
            return fallback.makeCounter(label: label, dimensions: dimensions)
        }
        return registry.makeCounter(descriptor: descriptor(label, help), labels: dimensions)
    }

    public func makeFloatingPointCounter(
        label: String,
        dimensions: [(String, String)]
    ) -> any FloatingPointCounterHandler {
        fallback.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard !aggregate, let help = CoordinatorMetrics.help[label] else {
            return fallback.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        return registry.makeGauge(descriptor: descriptor(label, help), labels: dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let help = CoordinatorMetrics.help[label] else {
            return fallback.makeMeter(label: label, dimensions: dimensions)
        }
        return registry.makeGauge(descriptor: descriptor(label, help), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        fallback.makeTimer(label: label, dimensions: dimensions)
    }

    private func descriptor(_ label: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help)
    }

    public func destroyCounter(_ handler: any CounterHandler) { fallback.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        fallback.destroyFloatingPointCounter(handler)
    }
    public func destroyRecorder(_ handler: any RecorderHandler) { fallback.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { fallback.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { fallback.destroyTimer(handler) }
}
