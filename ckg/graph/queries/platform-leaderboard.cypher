// Systems ranked by throughput for one benchmark model and scenario, with energy efficiency.
// One row per platform and benchmark round: samples per second, samples per joule, average
// power and accuracy, as published (MLPerf) or imported from tables.
//
// Parameters:
//   model     Model name as ingested, e.g. resnet50.
//   scenario  Benchmark scenario, e.g. Offline, Server, SingleStream.
//
// Example:
//   ckg query platform-leaderboard -p model=resnet50 -p scenario=Offline
//
// Table: system, samples_per_s, samples_per_j, power_w, accuracy, version
MATCH (mo:Model {name: $model})<-[:OF_MODEL]-(r:Result)-[:ON]->(pl:Platform)
WHERE r.scenario = $scenario
WITH pl, r.version AS version,
     max(CASE WHEN r.metric = 'throughput' THEN r.value END) AS samples_per_s,
     max(CASE WHEN r.metric = 'inferences_per_joule' THEN r.value END) AS samples_per_j,
     avg(CASE WHEN r.metric = 'power' THEN r.value END) AS power_w,
     max(CASE WHEN r.metric = 'accuracy' THEN r.value END) AS accuracy,
     min(CASE WHEN r.metric = 'latency' THEN r.value END) AS latency_s
RETURN pl.name AS system,
       pl.submitter AS submitter,
       version,
       samples_per_s,
       samples_per_j,
       power_w,
       accuracy,
       latency_s,
       pl.uid AS platform
ORDER BY coalesce(samples_per_s, -1.0) DESC, coalesce(latency_s, 1.0e300), system, version, platform
