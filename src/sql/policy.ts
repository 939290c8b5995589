/**
 * What user SQL may call. Table functions come from an allow-list (Tinybird's); scalar functions
 * from a deny-list of everything that reaches outside the engine, across databases, or into the
 * server's configuration and identity. The deny-list was built by reviewing every function of
 * the embedded ClickHouse 26.7 (`system.functions`, 1,589 non-aggregate functions); a name not on
 * it is an ordinary computation.
 */

/** Table functions user SQL may use in FROM (lower-case). */
export const ALLOWED_TABLE_FUNCTIONS = new Set(['numbers', 'numbers_mt', 'zeros', 'zeros_mt', 'values', 'null', 'generaterandom']);

/** System tables user SQL may read (`system.<name>`). */
export const ALLOWED_SYSTEM_TABLES = new Set(['one', 'numbers', 'numbers_mt', 'functions']);

/** Every table function of the engine, so their names are refused as scalar calls too. */
const TABLE_FUNCTIONS = `SQLStandardValues arrowstream azureBlobStorage azureBlobStorageCluster cluster clusterAllReplicas cosn deltaLake deltaLakeAzure
deltaLakeAzureCluster deltaLakeCluster deltaLakeLocal deltaLakeS3 deltaLakeS3Cluster dictionary eval executable file fileCluster filesystem
fuzzJSON fuzzQuery gcs generateSeries generate_series hdfs hdfsCluster hudi hudiCluster iceberg icebergAzure icebergAzureCluster
icebergCluster icebergHDFS icebergHDFSCluster icebergLocal icebergLocalCluster icebergS3 icebergS3Cluster input jdbc loop merge
mergeTreeAnalyzeIndexes mergeTreeAnalyzeIndexesUUID mergeTreeIndex mergeTreeProjection mergeTreeTextIndex mongodb mysql odbc oss paimon
paimonAzure paimonAzureCluster paimonCluster paimonHDFS paimonHDFSCluster paimonLocal paimonS3 paimonS3Cluster postgresql primes
prometheusQuery prometheusQueryRange redis remote remoteSecure s3 s3Cluster sqlite timeSeriesData timeSeriesMetrics timeSeriesSamples
timeSeriesSelector timeSeriesTags url urlCluster view viewExplain viewIfPermitted ytsaurus`;

/**
 * Scalar functions refused, by reason (one line per reason): files; other tables and
 * databases; settings and server configuration; identity; the host; internals; models; MVCC
 * internals; the functional forms of IN (their second argument is a table); the host name under
 * its primary name FQDN (fullHostName is only its alias) and Keeper-backed counters; LLM calls to
 * external providers; NAIVE_BAYES dictionaries looked up by name (like dictGet).
 */
const DENIED_SCALAR = `
file
hasColumnInTable getMaxTableNameLengthForDatabase
getSetting getSettingOrDefault getServerSetting getMergeTreeSetting getMacro getClientHTTPHeader globalVariable
currentDatabase current_database DATABASE SCHEMA currentSchemas current_schemas
currentUser current_user user session_user authUser authenticatedUser currentProfiles currentRoles defaultProfiles defaultRoles enabledProfiles enabledRoles
filesystemAvailable filesystemCapacity filesystemUnreserved getOSKernelVersion getServerPort tcpPort hostName hostname fullHostName serverUUID
displayName buildId shardNum shardCount zookeeperSessionUptime showCertificate
addressToLine addressToLineWithInlines addressToSymbol demangle trap logTrace
catboostEvaluate evalMLMethod modelEvaluate
transactionID transactionLatestSnapshot transactionOldestSnapshot hasThreadFuzzer
FQDN generateSerialID
aiClassify aiEmbed aiExtract aiGenerate aiTranslate
naiveBayesClassifier naiveBayesClassifierWithProb naiveBayesClassifierWithAllProbs
in notIn nullIn notNullIn inIgnoreSet notInIgnoreSet nullInIgnoreSet notNullInIgnoreSet
globalIn globalNotIn globalNullIn globalNotNullIn globalInIgnoreSet globalNotInIgnoreSet globalNullInIgnoreSet globalNotNullInIgnoreSet
`;

const deniedScalar = new Set([...DENIED_SCALAR.split(/\s+/), ...TABLE_FUNCTIONS.split(/\s+/)].filter(Boolean).map((n) => n.toLowerCase()));
// `format(pattern, ...)` is an ordinary string function as well as a table function.
deniedScalar.delete('format');

/** Why a scalar function call is refused, or undefined when it is allowed. */
export function deniedFunction(name: string): string | undefined {
  const n = name.toLowerCase();
  if (n.startsWith('__')) return name;
  if (n.startsWith('dictget') || n === 'dicthas' || n === 'dictisin') return name;
  return deniedScalar.has(n) ? name : undefined;
}

/** Names that are databases of the engine, never columns or tables of a workspace. */
const STATIC_DATABASES = new Set(['system', 'information_schema', 'default', '_temporary_and_external_tables', '_local', 'pipit_sandbox', 'pipit_stages']);

export function looksLikeDatabase(name: string, known: ReadonlySet<string>): boolean {
  const n = name.toLowerCase();
  return STATIC_DATABASES.has(n) || /^w_[0-9a-z]+$/.test(n) || known.has(n);
}

/** Output formats of `/v0/sql` and their response content types (lower-case lookup). */
export const OUTPUT_FORMATS: Record<string, { name: string; contentType: string }> = {};
for (const [names, contentType] of [
  [['JSON'], 'application/json'],
  [['JSONCompact'], 'application/json'],
  [['JSONStrings'], 'application/json'],
  [['JSONEachRow', 'NDJSON', 'JSONLines'], 'application/x-ndjson'],
  [['CSV'], 'text/csv'],
  [['CSVWithNames'], 'text/csv'],
  [['TSV', 'TabSeparated'], 'text/tab-separated-values'],
  [['TSVWithNames', 'TabSeparatedWithNames'], 'text/tab-separated-values'],
  [['Parquet'], 'application/octet-stream'],
  [['PrettyCompact'], 'text/plain'],
  [['Prometheus'], 'text/plain; version=0.0.4'],
] as const) {
  for (const n of names) OUTPUT_FORMATS[n.toLowerCase()] = { name: names[0] === 'JSONEachRow' ? 'JSONEachRow' : n, contentType };
}
export const FORMAT_LIST = 'JSON, CSV, CSVWithNames, TSV, TSVWithNames, PrettyCompact, JSONEachRow, Parquet, JSONStrings, Prometheus';
