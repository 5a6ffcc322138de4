// Every published result on a dataset (for a task and metric) across papers, best first.
// Best follows the metric's direction (higher or lower is better, column direction): the
// registry's, or one inferred from the metric's name; a metric with neither is not ranked
// (direction null) until a direction is given. Each row gives the model, the value in its
// canonical unit, the string as published, the paper, its date, its code links and the
// ingested artifacts that implement it. A dataset with parts (Papers with Code sub-datasets,
// "SemEval 2018 / General" PART_OF "SemEval 2018") lists the results of each part too,
// column dataset saying which, each part ranked on its own: values measured on different
// data are never ranked against each other.
//
// Parameters:
//   dataset   Dataset name as ingested, e.g. "SQuAD1.1", or a part, "SemEval 2018 / General".
//   task      (optional) Task name as ingested, e.g. "Question Answering"; all tasks when left out.
//   metric    (optional) Metric, canonical name or alias, e.g. f1 or "F1"; all metrics when left out.
//   direction (optional) min or max: how to rank a metric whose direction is not known.
//
// Example:
//   ckg query compare-papers -p task="Question Answering" -p dataset=SQuAD1.1 -p metric=f1
//
// Table: metric, dataset, model, value, unit, paper, date
MATCH (:Dataset {name: $dataset})<-[:PART_OF*0..]-(part:Dataset)
// WITH: start from the index of the dataset, not from every Result (FalkorDB plans the one
// pattern from a scan of the tasks: 140 ms against 6 ms on 30,000 results).
WITH part
MATCH (t:Task)<-[:FOR_TASK]-(r:Result)-[:ON_DATASET]->(part)
MATCH (r)-[:OF_METRIC]->(m:Metric)
WHERE r.value IS NOT NULL AND ($task IS NULL OR t.name = $task)
  AND ($metric IS NULL OR m.name = $metric)
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
OPTIONAL MATCH (a:Artifact)-[:IMPLEMENTS]->(p)
WITH r, m, p, collect(DISTINCT a.uid) AS artifacts
WITH r, m, p, artifacts, coalesce($direction, m.direction) AS direction
RETURN m.name AS metric,
       r.dataset AS dataset,
       direction,
       r.model AS model,
       r.value AS value,
       r.unit AS unit,
       r.stderr AS stderr,
       r.raw AS raw,
       p.title AS paper,
       p.url AS paper_url,
       coalesce(p.date, r.date) AS date,
       p.code_urls AS code,
       artifacts,
       r.uid AS result
ORDER BY metric, dataset, CASE direction WHEN 'min' THEN r.value WHEN 'max' THEN -r.value END,
         model, result
