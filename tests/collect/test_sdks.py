"""Each wire format with its real SDK from PyPI as the client, default and batch modes."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.collect.serving import Server


def _count(server: Server, where: str) -> int:
    return int(server.sql(f"SELECT count(*) FROM events WHERE {where}")[0][0])


@pytest.mark.parametrize("batch", [False, True])
def test_sensors_sdk(server: Server, batch: bool) -> None:
    import sensorsanalytics as sa

    url = f"{server.url}/sa?project=default&token={server.write_key}"
    consumer = sa.BatchConsumer(url, max_size=5) if batch else sa.DefaultConsumer(url)
    client = sa.SensorsAnalytics(consumer)
    tag = f"s{int(batch)}{uuid.uuid4().hex[:6]}"
    for i in range(7):
        client.track(f"{tag}-anon", "view_item", {"price": 1.5 * i, "tag": tag}, is_login_id=False)
    client.track_signup(f"{tag}-login", f"{tag}-anon", {"tag": tag})
    client.profile_set(f"{tag}-login", {"plan": "gold"}, is_login_id=True)
    client.item_set("sku", f"{tag}-i1", {"colour": "red"})
    client.flush()
    client.close()
    assert _count(server, f"tag = '{tag}' AND event = 'view_item'") == 7
    persons = server.sql(f"SELECT count(DISTINCT user_id) FROM events WHERE tag = '{tag}'")
    assert persons == [[1]]  # the signup bound the anonymous history to the login
    assert server.sql(f"SELECT plan FROM users u JOIN identities i USING (user_id) WHERE id_value = '{tag}-login'") == [
        ["gold"]
    ]


def test_sensors_debug_is_a_dry_run(server: Server) -> None:
    import sensorsanalytics as sa

    consumer = sa.DebugConsumer(f"{server.url}/sa?project=default&token={server.write_key}", write_data=False)
    client = sa.SensorsAnalytics(consumer)
    client.track("dry-1", "dry_event", {"x": 1})
    with pytest.raises(sa.SensorsAnalyticsDebugException):
        client._consumer.send('{"type": "track", "event": "bad name", "distinct_id": "d", "time": 1}')
    assert _count(server, "event = 'dry_event'") == 0


@pytest.mark.parametrize("gzip", [False, True])
def test_segment_sdk(server: Server, gzip: bool) -> None:
    from segment import analytics

    client = analytics.Client(server.write_key, host=server.url, gzip=gzip, sync_mode=not gzip, max_retries=1)
    tag = f"g{int(gzip)}{uuid.uuid4().hex[:6]}"
    for i in range(5):
        client.track(anonymous_id=f"{tag}-a", event="Order Completed", properties={"total": i, "tag": tag})
    client.page(anonymous_id=f"{tag}-a", name="Home", properties={"tag": tag})
    client.identify(user_id=f"{tag}-u", anonymous_id=f"{tag}-a", traits={"email": "x@example.com"})
    client.alias(previous_id=f"{tag}-a2", user_id=f"{tag}-u")
    client.flush()
    if gzip:  # batch mode: a consumer thread sends batches
        client.join()
    assert _count(server, f"tag = '{tag}' AND event = 'Order_Completed'") == 5
    assert _count(server, f"tag = '{tag}' AND event = '$pageview'") == 1
    assert server.sql(f"SELECT count(DISTINCT user_id) FROM events WHERE tag = '{tag}'") == [[1]]
    emails = server.sql(f"SELECT email FROM users u JOIN identities i USING (user_id) WHERE id_value = '{tag}-u'")
    assert emails == [["x***@example.com"]]  # the init token holds no pii right: e-mails come back masked


@pytest.mark.parametrize("sync", [True, False])
def test_posthog_sdk(server: Server, sync: bool) -> None:
    from posthog import Posthog

    client = Posthog(server.write_key, host=server.url, sync_mode=sync, gzip=not sync, flush_at=3)
    tag = f"p{int(sync)}{uuid.uuid4().hex[:6]}"
    for i in range(4):
        client.capture("signed up", distinct_id=f"{tag}-d", properties={"n": i, "tag": tag})
    client.set(distinct_id=f"{tag}-d", properties={"city": "Hangzhou"})
    client.alias(previous_id=f"{tag}-d", distinct_id=f"{tag}-login")
    client.flush()
    client.shutdown()
    assert _count(server, f"tag = '{tag}' AND event = 'signed_up'") == 4
    cities = server.sql(f"SELECT city FROM users u JOIN identities i USING (user_id) WHERE id_value = '{tag}-d'")
    assert cities == [["Hangzhou"]]


@pytest.mark.parametrize("buffered", [False, True])
def test_mixpanel_sdk(server: Server, buffered: bool) -> None:
    import mixpanel

    urls = {
        "events_url": f"{server.url}/track",
        "people_url": f"{server.url}/engage",
        "import_url": f"{server.url}/import",
    }
    consumer = mixpanel.BufferedConsumer(max_size=3, **urls) if buffered else mixpanel.Consumer(**urls)
    client = mixpanel.Mixpanel(server.write_key, consumer=consumer)
    tag = f"m{int(buffered)}{uuid.uuid4().hex[:6]}"
    for i in range(5):
        client.track(f"{tag}-d", "Played Song", {"n": i, "tag": tag})
    client.people_set(f"{tag}-d", {"$name": "Ann", "plan": "pro"})
    client.people_increment(f"{tag}-d", {"songs": 2})
    if buffered:
        consumer.flush()
    assert _count(server, f"tag = '{tag}' AND event = 'Played_Song'") == 5
    plans = server.sql(f"SELECT plan, songs FROM users u JOIN identities i USING (user_id) WHERE id_value = '{tag}-d'")
    assert plans == [["pro", 2.0]]


def test_sdk_retries_are_deduplicated(server: Server) -> None:
    import httpx

    now = int(time.time() * 1000)
    batch = {
        "batch": [
            {
                "type": "track",
                "event": "Retry",
                "anonymousId": "r1",
                "messageId": "m-1",
                "timestamp": None,
                "properties": {"k": 1},
            }
        ]
    }
    batch["batch"][0]["originalTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000))
    for _ in range(3):
        assert httpx.post(server.url + "/v1/batch", json=batch, auth=(server.write_key, "")).status_code == 200
    assert _count(server, "event = 'Retry'") == 1
