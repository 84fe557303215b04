//! The Kubernetes objects stackc writes, as typed structs: only the fields it
//! sets, in the API's field names. Serialized by `targets::yaml`.

use indexmap::IndexMap;
use serde::Serialize;

pub type Labels = IndexMap<String, String>;

mod autoscaling;
pub use autoscaling::*;

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Object<S: Serialize> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<S>,
}

#[derive(Serialize, Default)]
pub struct Metadata {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub labels: Labels,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: Labels,
}

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    pub match_labels: Labels,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    pub selector: Selector,
    pub strategy: Strategy,
    pub template: PodTemplate,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub rolling_update: RollingUpdate,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdate {
    pub max_surge: u32,
    pub max_unavailable: u32,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    pub service_name: String,
    pub selector: Selector,
    pub template: PodTemplate,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_claim_templates: Vec<ClaimTemplate>,
}

#[derive(Serialize, Default)]
pub struct ClaimTemplate {
    pub metadata: NameOnly,
    pub spec: ClaimSpec,
}

#[derive(Serialize, Default)]
pub struct NameOnly {
    pub name: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    pub access_modes: Vec<&'static str>,
    pub resources: ClaimResources,
}

#[derive(Serialize, Default)]
pub struct ClaimResources {
    pub requests: IndexMap<&'static str, String>,
}

#[derive(Serialize, Default)]
pub struct PodTemplate {
    pub metadata: TemplateMetadata,
    pub spec: PodSpec,
}

#[derive(Serialize, Default)]
pub struct TemplateMetadata {
    pub labels: Labels,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: Labels,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// A Job's pods: `Never` or `OnFailure` (a workload's: always, unwritten).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// `false` where only an init container talks to the API: its token is
    /// mounted there alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<PodVolume>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodVolume {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<ClaimRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projected: Option<Projected>,
}

/// A projected volume: the service account token, the cluster's CA and the
/// namespace, as the kubelet mounts them when it mounts a token itself.
#[derive(Serialize, Clone, Default)]
pub struct Projected {
    pub sources: Vec<ProjectedSource>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProjectedSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_token: Option<TokenProjection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<KeysOf>,
    #[serde(rename = "downwardAPI", skip_serializing_if = "Option::is_none")]
    pub downward_api: Option<DownwardItems>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenProjection {
    pub path: &'static str,
    pub expiration_seconds: u32,
}

#[derive(Serialize, Clone, Default)]
pub struct KeysOf {
    pub name: &'static str,
    pub items: Vec<KeyToPath>,
}

#[derive(Serialize, Clone, Default)]
pub struct KeyToPath {
    pub key: &'static str,
    pub path: &'static str,
}

#[derive(Serialize, Clone, Default)]
pub struct DownwardItems {
    pub items: Vec<DownwardItem>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct DownwardItem {
    pub path: &'static str,
    pub field_ref: FieldRef,
}

#[derive(Serialize, Clone, Default)]
pub struct ConfigMapRef {
    pub name: String,
}

#[derive(Serialize, Clone, Default)]
pub struct EmptyDir {}

/// A ConfigMap (v1): text files mounted into pods.
#[derive(Serialize, Default)]
pub struct ConfigMap {
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub data: IndexMap<String, String>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRef {
    pub claim_name: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Affinity {
    pub pod_anti_affinity: PodAntiAffinity,
}

#[derive(Serialize, Default)]
pub struct PodAntiAffinity {
    #[serde(rename = "preferredDuringSchedulingIgnoredDuringExecution")]
    pub preferred: Vec<WeightedTerm>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WeightedTerm {
    pub weight: u32,
    pub pod_affinity_term: AffinityTerm,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AffinityTerm {
    pub label_selector: Selector,
    pub topology_key: &'static str,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<crate::base::Name>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: String,
    pub container_port: u16,
    pub protocol: &'static str,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    pub field_path: &'static str,
}

#[derive(Serialize, Clone, Default)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

#[derive(Serialize, Default)]
pub struct Resources {
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub requests: IndexMap<&'static str, String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub limits: IndexMap<&'static str, String>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocket>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
}

#[derive(Serialize, Default)]
pub struct HttpGet {
    pub path: crate::base::Name,
    pub port: String,
}

#[derive(Serialize, Default)]
pub struct TcpSocket {
    pub port: String,
}

#[derive(Serialize, Default)]
pub struct Exec {
    pub command: Vec<String>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub pre_stop: Handler,
}

#[derive(Serialize, Default)]
pub struct Handler {
    pub exec: Exec,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<&'static str>,
    /// Headless Services of StatefulSets whose pods find each other before they
    /// are ready (Redis replicas, sentinels).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub publish_not_ready_addresses: bool,
    pub selector: Labels,
    pub ports: Vec<ServicePort>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    pub target_port: String,
    pub protocol: &'static str,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PdbSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_available: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<u32>,
    pub selector: Selector,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClaimObjectSpec {
    pub access_modes: Vec<&'static str>,
    pub resources: ClaimResources,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<IngressTls>,
    pub rules: Vec<IngressRule>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    pub hosts: Vec<String>,
    pub secret_name: String,
}

#[derive(Serialize, Default)]
pub struct IngressRule {
    pub host: String,
    pub http: IngressHttp,
}

#[derive(Serialize, Default)]
pub struct IngressHttp {
    pub paths: Vec<IngressPath>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressPath {
    pub path: crate::base::Name,
    pub path_type: &'static str,
    pub backend: IngressBackend,
}

#[derive(Serialize, Default)]
pub struct IngressBackend {
    pub service: BackendService,
}

#[derive(Serialize, Default)]
pub struct BackendService {
    pub name: String,
    pub port: NamedPort,
}

#[derive(Serialize, Default)]
pub struct NamedPort {
    pub name: String,
}

/// A CloudNativePG `Cluster` (postgresql.cnpg.io/v1): the operator runs the
/// instances, fails over, and serves `<name>-rw` and `<name>-ro`.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CnpgClusterSpec {
    pub instances: u32,
    pub bootstrap: CnpgBootstrap,
    pub storage: CnpgStorage,
    /// The service's `postgresql` settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgresql: Option<CnpgPostgresql>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    pub affinity: CnpgAffinity,
    /// The Barman Cloud plugin, archiving the WAL, with a backup.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<CnpgPlugin>,
    /// The cluster a recovery restores from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_clusters: Vec<CnpgExternalCluster>,
    /// What the operator puts on every object of the cluster, its pods too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inherited_metadata: Option<InheritedMetadata>,
    /// The roles the operator makes and keeps: the clients' own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed: Option<CnpgManaged>,
}

#[derive(Serialize)]
pub struct CnpgManaged {
    pub roles: Vec<CnpgRole>,
}

/// A role CloudNativePG makes, its password from a `kubernetes.io/basic-auth`
/// Secret.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CnpgRole {
    pub name: String,
    pub comment: String,
    pub ensure: &'static str,
    pub login: bool,
    pub superuser: bool,
    pub createdb: bool,
    pub createrole: bool,
    pub replication: bool,
    pub in_roles: Vec<String>,
    pub password_secret: NameOnly,
}

#[derive(Serialize)]
pub struct InheritedMetadata {
    pub annotations: Labels,
}

#[derive(Serialize)]
pub struct CnpgPostgresql {
    /// As PostgreSQL reads them: every value a string.
    pub parameters: IndexMap<String, String>,
}

/// How a cluster starts: a new database, or a recovery from a backup (one
/// of the two).
#[derive(Serialize, Default)]
pub struct CnpgBootstrap {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initdb: Option<CnpgInitDb>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<CnpgRecovery>,
}

#[derive(Serialize, Default)]
pub struct CnpgInitDb {
    pub database: String,
    pub owner: String,
    pub secret: NameOnly,
}

/// A recovery from `source`, one of `externalClusters`: its latest state,
/// the application's database and owner kept.
#[derive(Serialize, Default)]
pub struct CnpgRecovery {
    pub source: String,
    pub database: String,
    pub owner: String,
    pub secret: NameOnly,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CnpgPlugin {
    pub name: &'static str,
    #[serde(rename = "isWALArchiver", skip_serializing_if = "Option::is_none")]
    pub is_wal_archiver: Option<bool>,
    pub parameters: IndexMap<&'static str, String>,
}

#[derive(Serialize, Default)]
pub struct CnpgExternalCluster {
    pub name: String,
    pub plugin: CnpgPlugin,
}

/// A Barman Cloud `ObjectStore` (barmancloud.cnpg.io/v1): the bucket, its
/// credentials, the compression, the retention.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSpec {
    pub configuration: BarmanConfiguration,
    pub retention_policy: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BarmanConfiguration {
    pub destination_path: String,
    #[serde(rename = "endpointURL")]
    pub endpoint_url: String,
    pub s3_credentials: S3Credentials,
    pub wal: Compression,
    pub data: Compression,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3Credentials {
    pub access_key_id: SecretKeyRef,
    pub secret_access_key: SecretKeyRef,
    pub region: SecretKeyRef,
}

#[derive(Serialize, Default)]
pub struct Compression {
    pub compression: &'static str,
}

/// A CloudNativePG `ScheduledBackup`: a base backup of `cluster` on the
/// schedule (six fields, seconds first), by the plugin.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledBackupSpec {
    pub schedule: String,
    pub immediate: bool,
    pub backup_owner_reference: &'static str,
    pub cluster: NameOnly,
    pub method: &'static str,
    pub plugin_configuration: PluginName,
}

#[derive(Serialize, Default)]
pub struct PluginName {
    pub name: &'static str,
}

#[derive(Serialize, Default)]
pub struct CnpgStorage {
    pub size: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CnpgAffinity {
    pub enable_pod_anti_affinity: bool,
    pub topology_key: &'static str,
}
