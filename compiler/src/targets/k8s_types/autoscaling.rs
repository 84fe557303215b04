//! A HorizontalPodAutoscaler's spec (autoscaling/v2): its target, its
//! metrics (resource, pod and external) and its scaling behavior.

use serde::Serialize;

use super::Selector;

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HpaSpec {
    pub scale_target_ref: TargetRef,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub name: String,
}

#[derive(Serialize, Default)]
pub struct Metric {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<NamedMetric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<NamedMetric>,
}

/// A pod or external metric: which, and its target.
#[derive(Serialize)]
pub struct NamedMetric {
    pub metric: MetricIdentifier,
    pub target: ValueTarget,
}

#[derive(Serialize)]
pub struct MetricIdentifier {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
}

/// `AverageValue` (per pod) or `Value` (the metric's own), as a quantity.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueTarget {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Serialize, Default)]
pub struct ResourceMetric {
    pub name: &'static str,
    pub target: MetricTarget,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricTarget {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub average_utilization: u32,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<ScalingPolicy>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: u32,
    pub period_seconds: u64,
}
