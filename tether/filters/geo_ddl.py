"""PL/pgSQL functions behind the geo operators on PostgreSQL (no PostGIS needed).

:func:`geo_ddl` returns the statements a migration runs; SQLite needs none (its function
is registered on every connection, :func:`tether.filters.geo.register_sqlite`).

Why not PostgreSQL's own ``point``/``polygon`` types: their operators compare with a
tolerance of 1e-6 (``FPeq``), have no holes and no multipolygons, so they are not exact.
These functions work on ``numeric`` and use nothing but additions, subtractions,
multiplications and comparisons, so every test is exact on the decimal numbers as stored
in the document and as written in the filter. Where a point must be made (the middle of a
piece of an edge between two crossings) it is a rational point ``(x/d, y/d)`` with
``d > 0``, and the tests that take it multiply through b_y ``d`` instead of dividing.

A geometry is handed around as a flat ``numeric[]`` of directed edges (four numbers
each: x0, y0, x1, y1) and, where needed, a flat array of points (two numbers each).
Polygon rings are oriented so that the interior lies to the left of every edge (shells
counter-clockwise, holes clockwise): for a valid polygon or multipolygon each edge then
has interior on its left and exterior on its right, which the interior test relies on.

The functions (all ``IMMUTABLE PARALLEL SAFE``):

- ``tether_geo_locate(x, y, d, edges)``: 1 when ``(x/d, y/d)`` is inside the region the
  edges bound (even-odd rule), 0 on an edge, -1 outside;
- ``tether_geo_points(points, edges, stop)``: the locations of several points as flags
  (1 inside, 2 on the boundary, 4 outside), returning early once a ``stop`` flag is seen;
- ``tether_geo_meet(a, b)``: some edge of ``a`` and some edge of ``b`` share a point;
- ``tether_geo_split(a, b, stop)``: cuts every edge of ``a`` where the edges of ``b``
  cross or touch it and locates the middle of each piece in the region of ``b`` (flags
  as above). Each piece lies wholly inside, on, or outside that region, so its middle
  speaks for all of it;
- ``tether_geo_overlap(a, b)``: an edge of ``a`` and an edge of ``b`` overlap along a
  stretch of positive length and point the same way (so both interiors lie on its left);
- ``tether_geo_interiors(a, b)``: the interiors of two polygonal regions meet. They do
  exactly when a piece of an edge of one lies inside the other, or two edges overlap in
  the same direction: the set where both interiors meet is open and bounded, so its
  border holds a stretch of some edge, and along that stretch the other region is
  either inside (a piece found b_y ``split``) or bounded b_y an overlapping edge with its
  interior on the same side (found b_y ``overlap``);
- ``tether_geo(op, value, kind, bbox, edges, points, ends, outside)``: the operator on a
  document value (``jsonb``) and the operand prepared b_y :mod:`tether.filters.geo`.
"""

from __future__ import annotations

_FLAGS = "CASE {loc} WHEN 1 THEN 1 WHEN 0 THEN 2 ELSE 4 END"

_LOCATE = """
CREATE OR REPLACE FUNCTION tether_geo_locate(px numeric, py numeric, pd numeric, e numeric[])
RETURNS int LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  n int := coalesce(array_length(e, 1), 0);
  i int; ax numeric; ay numeric; bx numeric; b_y numeric; o numeric;
  inside boolean := false;
BEGIN
  FOR i IN 1..n BY 4 LOOP
    IF pd = 1 THEN
      ax := e[i]; ay := e[i + 1]; bx := e[i + 2]; b_y := e[i + 3];
    ELSE
      ax := e[i] * pd; ay := e[i + 1] * pd; bx := e[i + 2] * pd; b_y := e[i + 3] * pd;
    END IF;
    CONTINUE WHEN py < least(ay, b_y) OR py > greatest(ay, b_y);
    o := (bx - ax) * (py - ay) - (b_y - ay) * (px - ax);
    IF o = 0 AND px >= least(ax, bx) AND px <= greatest(ax, bx) THEN
      RETURN 0;
    END IF;
    -- The edge crosses the ray going right from the point (half-open in y).
    IF (ay > py) <> (b_y > py) AND (b_y > ay) = (o > 0) THEN
      inside := NOT inside;
    END IF;
  END LOOP;
  RETURN CASE WHEN inside THEN 1 ELSE -1 END;
END
$fn$
"""

_POINTS = f"""
CREATE OR REPLACE FUNCTION tether_geo_points(p numeric[], e numeric[], stop int)
RETURNS int LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  n int := coalesce(array_length(p, 1), 0);
  i int; flags int := 0;
BEGIN
  FOR i IN 1..n BY 2 LOOP
    flags := flags | {_FLAGS.format(loc="tether_geo_locate(p[i], p[i + 1], 1, e)")};
    IF flags & stop <> 0 THEN
      RETURN flags;
    END IF;
  END LOOP;
  RETURN flags;
END
$fn$
"""

_MEET = """
CREATE OR REPLACE FUNCTION tether_geo_meet(a numeric[], b numeric[])
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  na int := coalesce(array_length(a, 1), 0);
  nb int := coalesce(array_length(b, 1), 0);
  i int; j int;
  ax numeric; ay numeric; bx numeric; b_y numeric; cx numeric; cy numeric; ex numeric; ey numeric;
  o1 numeric; o2 numeric; o3 numeric; o4 numeric;
BEGIN
  FOR i IN 1..na BY 4 LOOP
    ax := a[i]; ay := a[i + 1]; bx := a[i + 2]; b_y := a[i + 3];
    FOR j IN 1..nb BY 4 LOOP
      cx := b[j]; cy := b[j + 1]; ex := b[j + 2]; ey := b[j + 3];
      CONTINUE WHEN greatest(cx, ex) < least(ax, bx) OR least(cx, ex) > greatest(ax, bx)
        OR greatest(cy, ey) < least(ay, b_y) OR least(cy, ey) > greatest(ay, b_y);
      o1 := (bx - ax) * (cy - ay) - (b_y - ay) * (cx - ax);
      o2 := (bx - ax) * (ey - ay) - (b_y - ay) * (ex - ax);
      CONTINUE WHEN (o1 > 0 AND o2 > 0) OR (o1 < 0 AND o2 < 0);
      o3 := (ex - cx) * (ay - cy) - (ey - cy) * (ax - cx);
      o4 := (ex - cx) * (b_y - cy) - (ey - cy) * (bx - cx);
      -- Collinear edges get here only when their boxes touch, and then they share a point.
      IF NOT ((o3 > 0 AND o4 > 0) OR (o3 < 0 AND o4 < 0)) THEN
        RETURN true;
      END IF;
    END LOOP;
  END LOOP;
  RETURN false;
END
$fn$
"""

_SPLIT = f"""
CREATE OR REPLACE FUNCTION tether_geo_split(a numeric[], b numeric[], stop int)
RETURNS int LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  na int := coalesce(array_length(a, 1), 0);
  nb int := coalesce(array_length(b, 1), 0);
  i int; j int; k int; m int; loc int; flags int := 0;
  ax numeric; ay numeric; bx numeric; b_y numeric; cx numeric; cy numeric; ex numeric; ey numeric;
  dx numeric; dy numeric; len numeric;
  o1 numeric; o2 numeric; o3 numeric; o4 numeric;
  tn numeric; td numeric; mn numeric; md numeric;
  ns numeric[]; ds numeric[];
BEGIN
  FOR i IN 1..na BY 4 LOOP
    ax := a[i]; ay := a[i + 1]; bx := a[i + 2]; b_y := a[i + 3];
    dx := bx - ax; dy := b_y - ay; len := dx * dx + dy * dy;
    -- Cut positions along the edge as fractions ns[k] / ds[k] of its length, from 0 to 1.
    ns := ARRAY[0, 1]::numeric[]; ds := ARRAY[1, 1]::numeric[];
    FOR j IN 1..nb BY 4 LOOP
      cx := b[j]; cy := b[j + 1]; ex := b[j + 2]; ey := b[j + 3];
      CONTINUE WHEN greatest(cx, ex) < least(ax, bx) OR least(cx, ex) > greatest(ax, bx)
        OR greatest(cy, ey) < least(ay, b_y) OR least(cy, ey) > greatest(ay, b_y);
      o1 := dx * (cy - ay) - dy * (cx - ax);
      o2 := dx * (ey - ay) - dy * (ex - ax);
      IF o1 = 0 THEN
        tn := (cx - ax) * dx + (cy - ay) * dy;
        IF tn > 0 AND tn < len THEN
          ns := ns || tn; ds := ds || len;
        END IF;
      END IF;
      IF o2 = 0 THEN
        tn := (ex - ax) * dx + (ey - ay) * dy;
        IF tn > 0 AND tn < len THEN
          ns := ns || tn; ds := ds || len;
        END IF;
      END IF;
      IF (o1 > 0 AND o2 < 0) OR (o1 < 0 AND o2 > 0) THEN
        o3 := (ex - cx) * (ay - cy) - (ey - cy) * (ax - cx);
        o4 := (ex - cx) * (b_y - cy) - (ey - cy) * (bx - cx);
        IF (o3 > 0 AND o4 < 0) OR (o3 < 0 AND o4 > 0) THEN
          tn := o3; td := o3 - o4;
          IF td < 0 THEN
            tn := -tn; td := -td;
          END IF;
          ns := ns || tn; ds := ds || td;
        END IF;
      END IF;
    END LOOP;
    m := array_length(ns, 1);
    -- Insertion sort; fractions compare b_y cross-multiplying (denominators are positive).
    FOR k IN 3..m LOOP
      tn := ns[k]; td := ds[k]; j := k - 1;
      WHILE j >= 1 AND ns[j] * td > tn * ds[j] LOOP
        ns[j + 1] := ns[j]; ds[j + 1] := ds[j]; j := j - 1;
      END LOOP;
      ns[j + 1] := tn; ds[j + 1] := td;
    END LOOP;
    FOR k IN 1..m - 1 LOOP
      CONTINUE WHEN ns[k] * ds[k + 1] = ns[k + 1] * ds[k];
      mn := ns[k] * ds[k + 1] + ns[k + 1] * ds[k];
      md := 2 * ds[k] * ds[k + 1];
      loc := tether_geo_locate(ax * md + mn * dx, ay * md + mn * dy, md, b);
      flags := flags | {_FLAGS.format(loc="loc")};
      IF flags & stop <> 0 THEN
        RETURN flags;
      END IF;
    END LOOP;
  END LOOP;
  RETURN flags;
END
$fn$
"""

_OVERLAP = """
CREATE OR REPLACE FUNCTION tether_geo_overlap(a numeric[], b numeric[])
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  na int := coalesce(array_length(a, 1), 0);
  nb int := coalesce(array_length(b, 1), 0);
  i int; j int;
  ax numeric; ay numeric; bx numeric; b_y numeric; cx numeric; cy numeric; ex numeric; ey numeric;
  dx numeric; dy numeric; t1 numeric; t2 numeric;
BEGIN
  FOR i IN 1..na BY 4 LOOP
    ax := a[i]; ay := a[i + 1]; bx := a[i + 2]; b_y := a[i + 3];
    dx := bx - ax; dy := b_y - ay;
    FOR j IN 1..nb BY 4 LOOP
      cx := b[j]; cy := b[j + 1]; ex := b[j + 2]; ey := b[j + 3];
      CONTINUE WHEN greatest(cx, ex) < least(ax, bx) OR least(cx, ex) > greatest(ax, bx)
        OR greatest(cy, ey) < least(ay, b_y) OR least(cy, ey) > greatest(ay, b_y);
      CONTINUE WHEN dx * (cy - ay) - dy * (cx - ax) <> 0 OR dx * (ey - ay) - dy * (ex - ax) <> 0;
      t1 := (cx - ax) * dx + (cy - ay) * dy;
      t2 := (ex - ax) * dx + (ey - ay) * dy;
      IF t2 > t1 AND greatest(t1, 0) < least(t2, dx * dx + dy * dy) THEN
        RETURN true;
      END IF;
    END LOOP;
  END LOOP;
  RETURN false;
END
$fn$
"""

_INTERIORS = """
CREATE OR REPLACE FUNCTION tether_geo_interiors(a numeric[], b numeric[])
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT tether_geo_split(a, b, 1) & 1 <> 0
    OR tether_geo_split(b, a, 1) & 1 <> 0
    OR tether_geo_overlap(a, b)
$fn$
"""

# The document value is parsed here, with the same rules as
# tether.filters.geo.doc_geometry: [x, y] or [x, y, z] numbers is a point; a GeoJSON Point,
# Polygon or MultiPolygon (rings of at least four positions, first = last) its geometry;
# anything else is no geometry and matches no operator.
_GOOD_POSITIONS = (
    'strict $[*] ? (@.type() == "array" && (@.size() == 2 || @.size() == 3)'
    ' && @[0].type() == "number" && @[1].type() == "number"'
    ' && @[@.size() - 1].type() == "number")'
)
# Bounding-box tests over every position P of the value, against the operand's box.
_BOX_TESTS = {
    "intersects": "exists(P ? (@[0] >= $x0)) && exists(P ? (@[0] <= $x1))"
    " && exists(P ? (@[1] >= $y0)) && exists(P ? (@[1] <= $y1))",
    "within": "!exists(P ? (@[0] < $x0 || @[0] > $x1 || @[1] < $y0 || @[1] > $y1))",
    "contains": "exists(P ? (@[0] <= $x0)) && exists(P ? (@[0] >= $x1))"
    " && exists(P ? (@[1] <= $y0)) && exists(P ? (@[1] >= $y1))",
}


def _box_cases(positions: str) -> str:
    return " ".join(
        f"WHEN '{op}' THEN jsonb_path_match(v, 'strict {test.replace('P', positions)}', qv, true)"
        for op, test in _BOX_TESTS.items()
    )


_MAIN_TEMPLATE = """
CREATE OR REPLACE FUNCTION tether_geo(
  op text, v jsonb, qk text, qb numeric[], qe numeric[], qp numeric[], qn numeric[], qc numeric[],
  qv jsonb
) RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
  t text; pos jsonb; polys jsonb; poly jsonb; ring jsonb;
  px numeric; py numeric;
  e numeric[] := '{}'; p numeric[] := '{}'; cr numeric[];
  xs numeric[]; ys numeric[]; area numeric; forward boolean;
  minx numeric; miny numeric; maxx numeric; maxy numeric;
  i int; j int; k int; m int; n int; flags int; hit boolean;
BEGIN
  t := jsonb_typeof(v);
  IF t = 'array' THEN
    pos := v;
  ELSIF t = 'object' THEN
    t := v ->> 'type';
    IF t = 'Point' THEN
      pos := v -> 'coordinates';
    ELSIF t = 'Polygon' THEN
      polys := jsonb_build_array(v -> 'coordinates');
    ELSIF t = 'MultiPolygon' THEN
      polys := v -> 'coordinates';
    ELSE
      RETURN false;
    END IF;
  ELSE
    RETURN false;
  END IF;

  IF pos IS NOT NULL THEN
    IF jsonb_typeof(pos) IS DISTINCT FROM 'array' OR jsonb_array_length(pos) NOT IN (2, 3)
       OR jsonb_typeof(pos -> 0) <> 'number' OR jsonb_typeof(pos -> 1) <> 'number'
       OR coalesce(jsonb_typeof(pos -> 2), 'number') <> 'number' THEN
      RETURN false;
    END IF;
    px := (pos ->> 0)::numeric; py := (pos ->> 1)::numeric;
    IF qk = 'e' THEN
      RETURN op = 'disjoint';
    END IF;
    IF px < qb[1] OR px > qb[3] OR py < qb[2] OR py > qb[4] THEN
      RETURN op = 'disjoint';
    END IF;
    IF qk = 'p' THEN
      n := array_length(qp, 1);
      IF op = 'contains' THEN
        FOR i IN 1..n BY 2 LOOP
          IF qp[i] <> px OR qp[i + 1] <> py THEN
            RETURN false;
          END IF;
        END LOOP;
        RETURN true;
      END IF;
      hit := false;
      FOR i IN 1..n BY 2 LOOP
        IF qp[i] = px AND qp[i + 1] = py THEN
          hit := true;
          EXIT;
        END IF;
      END LOOP;
      RETURN hit <> (op = 'disjoint');
    END IF;
    IF op = 'contains' THEN
      RETURN false;
    END IF;
    k := tether_geo_locate(px, py, 1, qe);
    IF qk = 'l' THEN
      -- A line has no inside: locate says 0 on it, and never 1.
      IF op = 'within' AND k = 0 THEN
        n := coalesce(array_length(qn, 1), 0);
        FOR i IN 1..n BY 2 LOOP
          IF qn[i] = px AND qn[i + 1] = py THEN
            RETURN false;
          END IF;
        END LOOP;
      END IF;
      RETURN (k = 0) <> (op = 'disjoint');
    END IF;
    IF op = 'within' THEN
      RETURN k = 1;
    END IF;
    RETURN (k >= 0) <> (op = 'disjoint');
  END IF;

  IF jsonb_typeof(polys) IS DISTINCT FROM 'array' OR jsonb_array_length(polys) = 0 THEN
    RETURN false;
  END IF;
  -- Bounding boxes first, over the raw JSON (a jsonpath runs in C): when they rule the
  -- predicate out it is false whether or not the value is a valid geometry. Not for
  -- disjoint, which holds then, but only for a value that is a geometry.
  IF qk <> 'e' AND op <> 'disjoint' THEN
    IF t = 'Polygon' THEN
      hit := CASE op {polygon_cases} END;
    ELSE
      hit := CASE op {multi_cases} END;
    END IF;
    IF hit IS FALSE THEN
      RETURN false;
    END IF;
  END IF;
  FOR i IN 0..jsonb_array_length(polys) - 1 LOOP
    poly := polys -> i;
    IF jsonb_typeof(poly) <> 'array' OR jsonb_array_length(poly) = 0 THEN
      RETURN false;
    END IF;
    FOR j IN 0..jsonb_array_length(poly) - 1 LOOP
      ring := poly -> j;
      IF jsonb_typeof(ring) <> 'array' OR jsonb_array_length(ring) < 4 THEN
        RETURN false;
      END IF;
      m := jsonb_array_length(ring);
      -- Every position two or three numbers; then all x and all y at once, in C.
      IF jsonb_array_length(jsonb_path_query_array(ring, '{good}')) <> m THEN
        RETURN false;
      END IF;
      xs := translate(jsonb_path_query_array(ring, 'strict $[*][0]')::text,
                      '[]', '{{}}')::numeric[];
      ys := translate(jsonb_path_query_array(ring, 'strict $[*][1]')::text,
                      '[]', '{{}}')::numeric[];
      IF xs[1] <> xs[m] OR ys[1] <> ys[m] THEN
        RETURN false;
      END IF;
      area := 0;
      FOR k IN 1..m - 1 LOOP
        area := area + xs[k] * ys[k + 1] - xs[k + 1] * ys[k];
        minx := least(minx, xs[k]); maxx := greatest(maxx, xs[k]);
        miny := least(miny, ys[k]); maxy := greatest(maxy, ys[k]);
      END LOOP;
      -- Interior on the left: shells counter-clockwise, holes clockwise.
      forward := (area > 0) = (j = 0);
      p := p || xs[1] || ys[1];
      FOR k IN 1..m - 1 LOOP
        CONTINUE WHEN xs[k] = xs[k + 1] AND ys[k] = ys[k + 1];
        IF forward THEN
          e := e || xs[k] || ys[k] || xs[k + 1] || ys[k + 1];
        ELSE
          e := e || xs[k + 1] || ys[k + 1] || xs[k] || ys[k];
        END IF;
      END LOOP;
    END LOOP;
  END LOOP;

  IF qk = 'e' THEN
    RETURN op = 'disjoint';
  END IF;
  IF op = 'within' THEN
    IF qk <> 'a' OR minx < qb[1] OR miny < qb[2] OR maxx > qb[3] OR maxy > qb[4] THEN
      RETURN false;
    END IF;
    RETURN NOT tether_geo_interiors(e, qc);
  END IF;
  IF op = 'contains' THEN
    IF qb[1] < minx OR qb[2] < miny OR qb[3] > maxx OR qb[4] > maxy THEN
      RETURN false;
    END IF;
    IF qk = 'p' THEN
      flags := tether_geo_points(qp, e, 4);
      RETURN flags & 4 = 0 AND flags & 1 <> 0;
    ELSIF qk = 'l' THEN
      flags := tether_geo_split(qe, e, 4);
      RETURN flags & 4 = 0 AND flags & 1 <> 0;
    END IF;
    -- The operand lies in the document's region when it does not meet the rest of the
    -- plane: the region's rings reversed inside a box around both.
    cr := ARRAY[minx - 1, miny - 1, maxx + 1, miny - 1, maxx + 1, miny - 1, maxx + 1, maxy + 1,
                maxx + 1, maxy + 1, minx - 1, maxy + 1, minx - 1, maxy + 1, minx - 1, miny - 1];
    n := array_length(e, 1);
    FOR i IN 1..n BY 4 LOOP
      cr := cr || e[i + 2] || e[i + 3] || e[i] || e[i + 1];
    END LOOP;
    RETURN NOT tether_geo_interiors(qe, cr);
  END IF;
  -- intersects, disjoint
  IF maxx < qb[1] OR minx > qb[3] OR maxy < qb[2] OR miny > qb[4] THEN
    RETURN op = 'disjoint';
  END IF;
  IF qk = 'p' THEN
    hit := tether_geo_points(qp, e, 3) & 3 <> 0;
  ELSIF qk = 'l' THEN
    -- A line that crosses no edge is wholly inside or wholly outside.
    hit := tether_geo_meet(qe, e) OR tether_geo_points(qp, e, 3) & 3 <> 0;
  ELSE
    -- Polygons whose boundaries do not meet intersect only when one holds a whole ring
    -- of the other.
    hit := tether_geo_meet(qe, e) OR tether_geo_points(qp, e, 3) & 3 <> 0
      OR tether_geo_points(p, qe, 3) & 3 <> 0;
  END IF;
  RETURN hit <> (op = 'disjoint');
END
$fn$
"""

_MAIN = (
    _MAIN_TEMPLATE.replace("{good}", _GOOD_POSITIONS)
    .replace("{{}}", "{}")
    .replace("{polygon_cases}", _box_cases("$.coordinates[*][*]"))
    .replace("{multi_cases}", _box_cases("$.coordinates[*][*][*]"))
)

_FUNCTIONS = [
    (
        "tether_geo",
        "text, jsonb, text, numeric[], numeric[], numeric[], numeric[], numeric[], jsonb",
    ),
    ("tether_geo_interiors", "numeric[], numeric[]"),
    ("tether_geo_overlap", "numeric[], numeric[]"),
    ("tether_geo_split", "numeric[], numeric[], int"),
    ("tether_geo_meet", "numeric[], numeric[]"),
    ("tether_geo_points", "numeric[], numeric[], int"),
    ("tether_geo_locate", "numeric, numeric, numeric, numeric[]"),
]


def geo_ddl(dialect: str) -> list[str]:
    """Statements that create the geo functions (idempotent); run them in a migration."""
    if dialect != "postgresql":
        return []
    return [_LOCATE, _POINTS, _MEET, _SPLIT, _OVERLAP, _INTERIORS, _MAIN]


def geo_drop_ddl(dialect: str) -> list[str]:
    """Statements that remove the geo functions again (for a downgrade)."""
    if dialect != "postgresql":
        return []
    return [f"DROP FUNCTION IF EXISTS {name}({args})" for name, args in _FUNCTIONS]
