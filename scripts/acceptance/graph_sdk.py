#!/usr/bin/env python3
"""Reads a student's related contacts from Parent Connection with Microsoft's Graph SDK for
Python (msgraph-sdk, PyPI), exactly as a third-party app would read them from Graph:

    GET {base}/education/users/{id}?$select=relatedContacts

The SDK's request adapter is pointed at the service instead of graph.microsoft.com and
authenticates with an app-only bearer token (`parent-connection token --app --scope
EduRoster.Read.All`). The SDK parses the answer into its own model types
(EducationUser, RelatedContact, ContactRelationship); this script prints what it
parsed as JSON (one object with the user id and the contacts) and exits non-zero when the
SDK fails or a contact lacks a field.

Usage: graph_sdk.py --base-url http://127.0.0.1:8080 --token "$APP" --student stu-1
       (the token may also come from the environment variable GRAPH_TOKEN)
Needs: python3 -m pip install msgraph-sdk
"""

import argparse
import asyncio
import json
import os
import sys

from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.education.users.item.education_user_item_request_builder import (
    EducationUserItemRequestBuilder,
)
from msgraph.generated.models.contact_relationship import ContactRelationship
from msgraph.generated.models.related_contact import RelatedContact
from msgraph.generated.models.education_user import EducationUser


class StaticToken(AccessTokenProvider):
    """Hands the SDK the bearer token it was given (an app-only token of the service)."""

    def __init__(self, token: str):
        self._token = token

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self._token

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([])


async def read_contacts(base_url: str, token: str, student: str) -> dict:
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(token)))
    adapter.base_url = base_url.rstrip("/")
    client = GraphServiceClient(request_adapter=adapter)
    query = EducationUserItemRequestBuilder.EducationUserItemRequestBuilderGetQueryParameters(
        select=["relatedContacts"]
    )
    config = EducationUserItemRequestBuilder.EducationUserItemRequestBuilderGetRequestConfiguration(
        query_parameters=query
    )
    user = await client.education.users.by_education_user_id(student).get(
        request_configuration=config
    )
    if not isinstance(user, EducationUser):
        raise SystemExit(f"the SDK returned {type(user).__name__}, not EducationUser")
    contacts = []
    for contact in user.related_contacts or []:
        if not isinstance(contact, RelatedContact):
            raise SystemExit(f"a related contact parsed as {type(contact).__name__}")
        if not isinstance(contact.relationship, ContactRelationship):
            raise SystemExit(f"relationship {contact.relationship!r} is not a ContactRelationship")
        if not contact.display_name:
            raise SystemExit(f"a related contact has no displayName: {contact!r}")
        contacts.append(
            {
                # Graph's relatedContact has no id; the service's extra `id` property lands in
                # the SDK's additional_data, as any unknown property does.
                "id": contact.additional_data.get("id"),
                "displayName": contact.display_name,
                "emailAddress": contact.email_address,
                "mobilePhone": contact.mobile_phone,
                "relationship": contact.relationship.value,
                "accessConsent": contact.access_consent,
            }
        )
    return {"id": user.id, "relatedContacts": contacts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="the service, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", default=os.environ.get("GRAPH_TOKEN"), help="app-only bearer token")
    parser.add_argument("--student", required=True, help="the student's SIS source id")
    args = parser.parse_args()
    if not args.token:
        parser.error("--token or GRAPH_TOKEN is required")
    result = asyncio.run(read_contacts(args.base_url, args.token, args.student))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
