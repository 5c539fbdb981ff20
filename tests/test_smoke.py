from tests.conftest import ADMIN_PASSWORD


def test_login_and_get_user(admin, anon):
    cep = anon.get("cloud-entry-point")
    assert "user" in cep["collections"]
    me = admin.http.get("/api/ping").json()
    assert me["user"].startswith("user/")
    doc = admin.get(me["user"])
    assert doc["username"] == "admin"
    assert "password" not in doc and "hash" not in str(doc)
    assert ADMIN_PASSWORD not in str(doc)
