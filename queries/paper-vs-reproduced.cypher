// A paper's reported results beside what runs of its implementing artifacts measured.
// One row per (reported result, measurement) on the same metric; ratio = measured / reported,
// so 1.0 means the run matched the paper (compare units: a run may measure a fraction where
// the paper printed a percentage).
//
// Parameters:
//   paper     Paper uid: arxiv:<id>, doi:<doi> or a canonical URL, e.g. arxiv:1810.04805.
//   metric    (optional) Metric, canonical name or alias; all metrics when left out.
//
// Example:
//   ckg query paper-vs-reproduced -p paper=arxiv:1810.04805 -p metric=f1
MATCH (p:Paper {uid: $paper})-[:REPORTS]->(r:Result)
WHERE $metric IS NULL OR r.metric = $metric
MATCH (a:Artifact)-[:IMPLEMENTS]->(p)
MATCH (run:Run)-[:OF]->(a)
MATCH (run)-[:MEASURED]->(x:Measurement)
WHERE x.metric = r.metric
OPTIONAL MATCH (run)-[:ON]->(pl:Platform)
RETURN r.metric AS metric,
       r.dataset AS dataset,
       r.model AS model,
       r.value AS reported,
       r.unit AS reported_unit,
       x.value AS measured,
       x.unit AS measured_unit,
       CASE WHEN r.value IS NULL OR r.value = 0 OR x.value IS NULL THEN null
            ELSE toFloat(x.value) / r.value END AS ratio,
       a.uid AS artifact,
       run.uid AS run,
       run.status AS status,
       run.started_at AS started_at,
       pl.uid AS platform
ORDER BY metric, dataset, model, started_at, run
