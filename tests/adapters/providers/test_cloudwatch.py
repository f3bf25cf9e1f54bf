"""The CloudWatch provider against a local server that speaks CloudWatch's AWS JSON 1.0 protocol: it checks
each request's Signature V4 (recomputed here from the AWS documentation's algorithm, with the secret key the
test gave the provider) and answers GetMetricData as CloudWatch documents it, errors included."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from ebbtide.adapters.base import MeasurementProvider
from ebbtide.adapters.providers import CloudWatchProvider, Providers
from ebbtide.adapters.providers.cloudwatch import MAX_PAGES
from ebbtide.core.verification import classify

from .conftest import Reply, Request, Vendor, start_of

KEY_ID, SECRET, REGION = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"
END = 1_764_290_400  # 2025-11-28T00:40:00Z, the end of every query window here
AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
QUERIES = [
    {"id": "rate", "expression": "errors / requests", "label": "error rate"},
    {
        "id": "errors",
        "metricStat": {
            "metric": {
                "namespace": "app",
                "metricName": "errors",
                "dimensions": [{"name": "Service", "value": "checkout"}],
            },
            "period": 300,
            "stat": "Sum",
            "unit": "Count",
        },
        "returnData": False,
    },
    {
        "id": "requests",
        "metricStat": {
            "metric": {"namespace": "app", "metricName": "requests"},
            "period": 300,
            "stat": "Sum",
        },
        "returnData": False,
    },
]


def signature_problem(request: Request, secret: str) -> str | None:
    """Why ``request`` is not signed with ``secret`` by SigV4 for CloudWatch (None when it is)."""
    found = AUTH.match(request.headers.get("authorization", ""))
    if found is None:
        return "Authorization header is not AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
    stamp = request.headers.get("x-amz-date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", stamp) or stamp[:8] != found["date"]:
        return f"x-amz-date {stamp!r} does not match the credential date {found['date']}"
    taken = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    if abs(taken - time.time()) > 300:
        return "Signature expired"
    signed = found["signed"].split(";")
    for needed in ("host", "x-amz-date", "x-amz-target", "content-type"):
        if needed not in signed:
            return f"{needed} is not signed"
    if found["service"] != "monitoring":
        return f"credential scope names service {found['service']!r}"
    canonical = "\n".join(
        [
            request.method,
            request.path,
            "",
            "".join(f"{h}:{' '.join(request.headers[h].split())}\n" for h in signed),
            found["signed"],
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    scope = f"{found['date']}/{found['region']}/{found['service']}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{secret}".encode()
    for part in (found["date"], found["region"], found["service"], "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, found["signature"]) else "signature does not match"


def aws_error(status: int, code: str, kind: str, message: str) -> Reply:
    """An error as CloudWatch's JSON protocol sends it (with the query-compatible code header)."""
    return Reply(
        status,
        {"__type": f"com.amazonaws.cloudwatch#{kind}", "message": message},
        {"x-amzn-query-error": f"{code};Sender"},
    )


def cloudwatch(*pages: dict[str, Any], secret: str = SECRET) -> Any:
    """A GetMetricData endpoint: verifies the signature and the protocol headers, then answers the pages
    (the first without NextToken, the next ones by their token)."""

    def serve(request: Request) -> Reply:
        if request.headers.get("x-amz-target") != "GraniteServiceVersion20100801.GetMetricData":
            return aws_error(400, "InvalidAction", "UnknownOperationException", "no such operation")
        if request.headers.get("content-type") != "application/x-amz-json-1.0":
            return aws_error(400, "InvalidParameterValue", "SerializationException", "bad content type")
        problem = signature_problem(request, secret)
        if problem is not None:
            return aws_error(403, "SignatureDoesNotMatch", "InvalidSignatureException", problem)
        token = request.json().get("NextToken")
        return Reply(body=pages[int(token) if token else 0])

    return serve


def result(
    qid: str, values: list[float], *, start: int = END - 300, status: str = "Complete"
) -> dict[str, Any]:
    times = [start - 300 * i for i in range(len(values))]
    return {"Id": qid, "Label": qid, "Timestamps": times, "Values": values, "StatusCode": status}


def cw(vendor: Vendor, condition: str = "all(result[0].Values, {# <= 0.01})", **config: Any) -> Any:
    block = {
        "endpoint": vendor.url,
        "region": REGION,
        "interval": "15m",
        "metricDataQueries": QUERIES,
        **config,
    }
    return start_of({"cloudWatch": block}, success_condition=condition)


def provider(**env: str) -> CloudWatchProvider:
    given = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, **env}
    return CloudWatchProvider(clock=lambda: END + 0.7, env=lambda name: given.get(name) or None)


def test_is_a_measurement_provider() -> None:
    assert isinstance(CloudWatchProvider(), MeasurementProvider)


def test_signed_get_metric_data_and_argos_result(vendor: Vendor) -> None:
    vendor.route(
        "POST", "/", cloudwatch({"MetricDataResults": [result("rate", [0.004, 0.002])], "Messages": []})
    )
    start = cw(vendor)
    m = provider().measure(start, now=0)
    assert m.error is None, m.error
    assert m.value == [
        {
            "Id": "rate",
            "Label": "rate",
            "Timestamps": ["2025-11-28T00:35:00Z", "2025-11-28T00:30:00Z"],
            "Values": [0.004, 0.002],
            "StatusCode": "Complete",
            "Messages": [],
        }
    ]
    assert classify(start.metric, m.value)[0] == "successful"
    (request,) = vendor.requests
    found = AUTH.match(request.headers["authorization"])
    assert found is not None and (found["key"], found["region"]) == (KEY_ID, REGION)
    assert request.json() == {
        "StartTime": END - 900,
        "EndTime": END,
        "MetricDataQueries": [
            {"Id": "rate", "Expression": "errors / requests", "Label": "error rate"},
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "MetricName": "errors",
                        "Namespace": "app",
                        "Dimensions": [{"Name": "Service", "Value": "checkout"}],
                    },
                    "Period": 300,
                    "Stat": "Sum",
                    "Unit": "Count",
                },
                "ReturnData": False,
            },
            {
                "Id": "requests",
                "MetricStat": {
                    "Metric": {"MetricName": "requests", "Namespace": "app", "Dimensions": []},
                    "Period": 300,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
        ],
    }


def test_a_point_over_the_threshold_fails(vendor: Vendor) -> None:
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": [result("rate", [0.004, 0.05])]}))
    start = cw(vendor)
    m = provider().measure(start, now=0)
    assert classify(start.metric, m.value)[0] == "failed"


def test_credentials_from_the_block_win_and_a_session_token_is_signed(vendor: Vendor) -> None:
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": [result("rate", [0.0])]}, secret="s3cret"))
    start = cw(vendor, accessKeyId="AKIDFROMSECRET", secretAccessKey="s3cret", sessionToken="tok")
    m = provider().measure(start, now=0)
    assert m.error is None, m.error
    (request,) = vendor.requests
    assert request.headers["x-amz-security-token"] == "tok"
    assert "x-amz-security-token" in request.headers["authorization"]
    assert "Credential=AKIDFROMSECRET/" in request.headers["authorization"]


def test_block_credentials_are_not_mixed_with_the_environments(vendor: Vendor) -> None:
    m = provider().measure(cw(vendor, accessKeyId="AKIDFROMSECRET"), now=0)
    assert m.error == "provider.cloudWatch: give accessKeyId and secretAccessKey together"
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": []}, secret="s3cret"))
    m = provider(AWS_SESSION_TOKEN="env-token").measure(
        cw(vendor, accessKeyId="AKIDFROMSECRET", secretAccessKey="s3cret"), now=0
    )
    assert m.error is None and "x-amz-security-token" not in vendor.requests[0].headers


def test_region_from_the_environment(vendor: Vendor) -> None:
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": [result("rate", [0.0])]}))
    m = provider(AWS_REGION="ap-south-1").measure(cw(vendor, region=None), now=0)
    assert (
        m.error is None
        and "/ap-south-1/monitoring/aws4_request" in vendor.requests[0].headers["authorization"]
    )


def test_the_default_endpoint_is_the_regional_one(vendor: Vendor) -> None:
    # nothing listens on that name here: the error names the address it tried
    m = provider().measure(cw(vendor, endpoint=None, region="zz-nowhere-9", timeout=2), now=0)
    assert m.error is not None and "https://monitoring.zz-nowhere-9.amazonaws.com" in m.error


def test_no_credentials_is_an_error(vendor: Vendor) -> None:
    m = CloudWatchProvider(env=lambda _: None).measure(cw(vendor), now=0)
    assert m.error is not None and m.error.startswith(
        "no AWS credentials: set provider.cloudWatch.accessKeyId"
    )
    assert vendor.requests == []


def test_no_region_is_an_error(vendor: Vendor) -> None:
    m = provider().measure(cw(vendor, region=None), now=0)
    assert m.error == "provider.cloudWatch.region is missing (or set AWS_REGION in the environment)"


def test_a_wrong_secret_is_refused_by_the_signature_check(vendor: Vendor) -> None:
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": []}, secret="another"))
    m = provider().measure(cw(vendor), now=0)
    assert m.error == "CloudWatch HTTP 403 SignatureDoesNotMatch: signature does not match"


def test_throttling(vendor: Vendor) -> None:
    vendor.route("POST", "/", aws_error(400, "Throttling", "ThrottlingException", "Rate exceeded"))
    m = provider().measure(cw(vendor), now=0)
    assert m.value is None and m.error == "CloudWatch HTTP 400 Throttling: Rate exceeded"


def test_access_denied(vendor: Vendor) -> None:
    said = (
        "User: arn:aws:iam::123456789012:user/rollouts is not authorized to perform: cloudwatch:GetMetricData"
    )
    vendor.route("POST", "/", aws_error(403, "AccessDenied", "AccessDeniedException", said))
    m = provider().measure(cw(vendor), now=0)
    assert m.error == f"CloudWatch HTTP 403 AccessDenied: {said}"


def test_an_error_without_the_query_code_uses_the_type(vendor: Vendor) -> None:
    body = {"__type": "com.amazonaws.cloudwatch#InvalidNextToken", "message": "The token is invalid"}
    vendor.route("POST", "/", Reply(400, body))
    m = provider().measure(cw(vendor), now=0)
    assert m.error == "CloudWatch HTTP 400 InvalidNextToken: The token is invalid"


def test_pages_are_followed_and_merged(vendor: Vendor) -> None:
    first = {"MetricDataResults": [result("rate", [0.001], status="PartialData")], "NextToken": "1"}
    second = {"MetricDataResults": [result("rate", [0.002], start=END - 600)]}
    vendor.route("POST", "/", cloudwatch(first, second))
    m = provider().measure(cw(vendor), now=0)
    assert m.error is None, m.error
    assert isinstance(m.value, list)
    (merged,) = m.value
    assert isinstance(merged, dict)
    assert merged["Values"] == [0.001, 0.002] and merged["StatusCode"] == "Complete"
    assert [r.json().get("NextToken") for r in vendor.requests] == [None, "1"]


def test_endless_pages_are_an_error(vendor: Vendor) -> None:
    vendor.route("POST", "/", Reply(body={"MetricDataResults": [], "NextToken": "0"}))
    m = provider().measure(cw(vendor), now=0)
    assert m.error == f"CloudWatch answered more than {MAX_PAGES} pages: narrow the interval"


def test_a_forbidden_result_is_an_error(vendor: Vendor) -> None:
    refused = {
        **result("rate", []),
        "StatusCode": "Forbidden",
        "Messages": [
            {"Code": "Forbidden", "Value": "Authentication too complex to retrieve cross region data"}
        ],
    }
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": [refused]}))
    m = provider().measure(cw(vendor), now=0)
    assert m.error == (
        "CloudWatch result 'rate' is Forbidden: "
        "Forbidden: Authentication too complex to retrieve cross region data"
    )


def test_no_points_pass_all_but_not_a_guarded_condition(vendor: Vendor) -> None:
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": [result("rate", [])]}))
    bare = cw(vendor)
    guarded = cw(vendor, "len(result[0].Values) > 0 && all(result[0].Values, {# <= 0.01})")
    assert classify(bare.metric, provider().measure(bare, now=0).value)[0] == "successful"
    assert classify(guarded.metric, provider().measure(guarded, now=0).value)[0] == "failed"


def test_non_json_body(vendor: Vendor) -> None:
    vendor.route("POST", "/", Reply(503, "Service Unavailable"))
    m = provider().measure(cw(vendor), now=0)
    assert m.error == f"HTTP 503 from {vendor.url}: not JSON: 'Service Unavailable'"


def test_slow_answer_is_a_timeout(vendor: Vendor) -> None:
    vendor.route("POST", "/", Reply(body={"MetricDataResults": []}, delay=3.0))
    began = time.monotonic()
    m = provider().measure(cw(vendor, timeout=0.3), now=0)
    assert time.monotonic() - began < 2.5
    assert m.error == f"timeout: no answer from CloudWatch at {vendor.url} within 0.3s"


@pytest.mark.parametrize(
    ("queries", "reason"),
    [
        ([], "provider.cloudWatch.metricDataQueries must be a non-empty list of queries"),
        ([{"id": "Rate", "expression": "1"}], "metricDataQueries[0].id must start with a lowercase letter"),
        ([{"id": "a"}], "metricDataQueries[0]: give exactly one of expression and metricStat"),
        ([{"id": "a", "Expression": "1"}], "metricDataQueries[0]: unknown field 'Expression'"),
        (
            [{"id": "a", "metricStat": {"metric": {"metricName": "x"}, "period": 0, "stat": "Sum"}}],
            "metricDataQueries[0].metricStat.period must be a whole number of seconds greater than 0",
        ),
        (
            [
                {
                    "id": "a",
                    "metricStat": {
                        "metric": {"metricName": "x", "dimensions": [{"name": "A"}]},
                        "period": 60,
                        "stat": "Sum",
                    },
                }
            ],
            "metricDataQueries[0].metricStat.metric.dimensions[0].value must be a non-empty string",
        ),
        ([{"id": "a", "expression": "1", "returnData": False}], "no query has returnData true"),
        ([{"id": "a", "expression": "1"}, {"id": "a", "expression": "2"}], "ids must be unique"),
        ([{"id": "a", "expression": "{{args.q}}"}], "metricDataQueries[0].expression has an unresolved"),
    ],
)
def test_bad_queries_name_the_field(vendor: Vendor, queries: Any, reason: str) -> None:
    m = provider().measure(cw(vendor, metricDataQueries=queries), now=0)
    assert m.error is not None and reason in m.error, m.error
    assert vendor.requests == []


def test_the_registry_measures_cloudwatch_metrics(vendor: Vendor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    vendor.route("POST", "/", cloudwatch({"MetricDataResults": [result("rate", [0.001])]}))
    m = Providers().measure(cw(vendor), now=0)
    assert m is not None and m.error is None, m and m.error
    assert isinstance(m.value, list) and len(m.value) == 1


TEMPLATE = """
apiVersion: ebbtide.dev/v1alpha1
kind: VerificationTemplate
metadata: {name: cw}
spec:
  metrics:
    - name: errors
      successCondition: "all(result[0].Values, {# <= 0.01})"
      provider:
        cloudWatch:
          metricDataQueries:
            - %s
"""


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("{id: Rate, expression: e}", "metricDataQueries[0].id: String should match pattern"),
        ("{id: a}", "metricDataQueries[0]: give exactly one of expression and metricStat"),
        ("{id: a, Expression: e}", "metricDataQueries[0].Expression: unknown field"),
        (
            "{id: a, metricStat: {metric: {metricName: x}, period: 0, stat: Sum}}",
            "metricDataQueries[0].metricStat.period: must be > 0, not 0",
        ),
    ],
)
def test_the_spec_loader_names_the_field_of_a_bad_query(query: str, reason: str) -> None:
    from ebbtide.core.spec import SpecError, load_text

    with pytest.raises(SpecError) as caught:
        load_text(TEMPLATE % query, "cw.yaml")
    assert (
        f"cw.yaml: document 1 (VerificationTemplate/cw): spec.metrics[0].provider.cloudWatch.{reason}"
        in str(caught.value)
    )
