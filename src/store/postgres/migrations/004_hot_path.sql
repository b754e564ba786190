-- 004_hot_path: a due-task index per queue, so a worker of a rare queue does not scan the backlog of
-- the others; and append_output, which grows a task's output across attempts inside the database
-- (the rule of src/store/output.ts: earlier lines first, at most 1,000, the oldest dropped behind a
-- marker that counts them).

CREATE INDEX tasks_due_queue ON tasks (queue, priority DESC, run_at, id) WHERE status = 'WAITING' AND waiting_for = 0;

CREATE FUNCTION append_output(earlier jsonb, added jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  carried numeric := 0;
  lines jsonb := earlier;
  total integer;
  dropped integer;
BEGIN
  IF jsonb_array_length(earlier) = 0 THEN
    RETURN added;
  END IF;
  IF earlier->>0 ~ '^… \d+ earlier lines dropped$' THEN
    carried := substring(earlier->>0 FROM '^… (\d+) ')::numeric;
    lines := earlier - 0;
  END IF;
  lines := lines || added;
  total := jsonb_array_length(lines);
  IF total + (CASE WHEN carried > 0 THEN 1 ELSE 0 END) <= 1000 THEN
    RETURN CASE WHEN carried > 0 THEN jsonb_build_array(earlier->0) || lines ELSE lines END;
  END IF;
  dropped := total - 999;
  RETURN jsonb_build_array(format('… %s earlier lines dropped', carried + dropped))
         || (SELECT jsonb_agg(line ORDER BY n) FROM jsonb_array_elements(lines) WITH ORDINALITY AS l (line, n) WHERE n > dropped);
END
$$;
