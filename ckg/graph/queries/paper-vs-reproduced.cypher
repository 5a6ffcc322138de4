// A paper's reported results beside the runs that reproduced them, with the ratio.
// One row per reported result and reproducing run; a result no run has reproduced yet is one
// row with the reproduced columns empty. A run reproduces a result when it was recorded with
// (Run)-[:REPRODUCES]->(Result) (ckg run --reproduces, or a reproduces: block in the
// artifact's meta; how = declared), or, for a run without such edges of an artifact that
// IMPLEMENTS the paper and has no reproduces: block, when one of its parameters is the
// result's model (case aside) and, where the paper reports that model and metric on more than
// one task or dataset, another one is the dataset (how = implements). Either way the run
// succeeded and measured the result's metric: task, dataset, model and metric all agree, and
// no run is compared with another model's result. reproduced is the mean over the run's
// repeats (stdev and n beside it); ratio = reproduced / reported, so 1.0 means the run matched
// the paper (compare units: a run may measure a fraction where the paper printed a percentage).
//
// Parameters:
//   paper     Paper uid, or a link ckg reads as one: arxiv:<id>, doi:<doi> or a canonical URL.
//   metric    (optional) Metric, canonical name or alias; all metrics when left out.
//
// Example:
//   ckg query paper-vs-reproduced -p paper=arxiv:1810.04805 -p metric=f1
//
// Table: model, metric, reported, unit, reproduced, stdev, n, ratio, how
MATCH (p:Paper {uid: $paper})-[:REPORTS]->(r:Result)
WHERE $metric IS NULL OR r.metric = $metric
OPTIONAL MATCH (p)-[:REPORTS]->(twin:Result)
WHERE twin.metric = r.metric AND toLower(twin.model) = toLower(r.model)
  AND (twin.task <> r.task OR twin.dataset <> r.dataset)
WITH p, r, count(twin) AS twins
OPTIONAL MATCH (r)<-[:REPRODUCES]-(d:Run)-[:MEASURED]->(dx:Measurement)
WHERE d.status = 'ok' AND dx.metric = r.metric AND dx.device IS NULL
WITH p, r, twins, collect(dx) AS declared
OPTIONAL MATCH (p)<-[:IMPLEMENTS]-(a:Artifact)<-[:OF]-(i:Run)-[:MEASURED]->(ix:Measurement)
WHERE i.status = 'ok' AND ix.metric = r.metric AND ix.device IS NULL
  AND NOT coalesce(a.meta, '') CONTAINS '"reproduces":'
  AND toLower(i.params) CONTAINS toLower(': "' + r.model + '"')
  AND (twins = 0 OR toLower(i.params) CONTAINS toLower(': "' + r.dataset + '"'))
  AND NOT (i)-[:REPRODUCES]->(:Result)
WITH r, declared, declared + collect(ix) AS found
UNWIND CASE size(found) WHEN 0 THEN [null] ELSE found END AS x
OPTIONAL MATCH (run:Run)-[:MEASURED]->(x)
OPTIONAL MATCH (run)-[:OF]->(art:Artifact)
OPTIONAL MATCH (run)-[:ON]->(pl:Platform)
WITH r, x, run, art, pl, declared, coalesce(x.mean, x.value) AS reproduced
RETURN r.task AS task,
       r.dataset AS dataset,
       r.model AS model,
       r.metric AS metric,
       r.value AS reported,
       r.unit AS unit,
       reproduced,
       x.stdev AS stdev,
       x.n AS n,
       x.unit AS reproduced_unit,
       CASE WHEN r.value IS NULL OR r.value = 0 OR reproduced IS NULL THEN null
            ELSE toFloat(reproduced) / r.value END AS ratio,
       pl.uid AS platform,
       run.uid AS run,
       art.uid AS artifact,
       CASE WHEN x IS NULL THEN null WHEN x IN declared THEN 'declared'
            ELSE 'implements' END AS how,
       run.started_at AS started_at,
       r.uid AS result
ORDER BY task, dataset, model, metric, result, started_at, run
