"""A LangGraph agent whose tool node asks Countersign before each tool runs.

    pip install "./client[langgraph]"
    export COUNTERSIGN_URL=http://127.0.0.1:8000 COUNTERSIGN_API_KEY=$(cat var/demo-agent.key)
    python examples/langgraph_gate.py              # the tool node waits for the reviewer
    python examples/langgraph_gate.py --interrupt  # the graph checkpoints; resumed after the decision

The model here is scripted so the example runs offline; swap in any chat model that calls tools
(e.g. `ChatOpenAI(model=...).bind_tools(TOOLS)`).
"""

from __future__ import annotations

import argparse
import os
import uuid

from countersign_client import Countersign
from countersign_client.langgraph import CountersignToolGate, resume_command
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def send_external_email(to: str, subject: str, body: str) -> str:
    """Send an email to someone outside the company."""
    print(f"SENDING to={to} subject={subject!r} body={body!r}", flush=True)
    return f"sent to {to}"


TOOLS = [send_external_email]
model = GenericFakeChatModel(
    messages=iter(
        [
            AIMessage(
                content="",
                tool_calls=[
                    {
                        "name": "send_external_email",
                        "args": {"to": "jane@customer.example", "subject": "Your refund", "body": "It is on its way."},
                        "id": f"lg-{uuid.uuid4()}",
                    }
                ],
            ),
            AIMessage(content="I have emailed Jane."),
        ]
    )
)


def agent(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


def build(gate: Countersign, mode: str):
    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(TOOLS, wrap_tool_call=CountersignToolGate(gate, mode=mode)))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=InMemorySaver())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interrupt", action="store_true", help="checkpoint with interrupt() instead of waiting")
    args = parser.parse_args()
    gate = Countersign(os.environ["COUNTERSIGN_URL"], api_key=os.environ["COUNTERSIGN_API_KEY"])
    graph = build(gate, "interrupt" if args.interrupt else "wait")
    config = {"configurable": {"thread_id": "example-thread"}}

    print("Asking a reviewer; approve it at /queue/ ...", flush=True)
    result = graph.invoke({"messages": [("user", "Tell Jane her refund is on its way.")]}, config)
    while "__interrupt__" in result:
        request_id = result["__interrupt__"][0].value[0]["countersign"]["request_id"]
        print(f"CHECKPOINTED waiting for Countersign request {request_id}", flush=True)
        # In a server you would stop here and resume from a webhook; this script just waits.
        result = graph.invoke(resume_command(gate, result), config)
    for message in result["messages"][-2:]:
        print(f"{message.type.upper()}: {message.content}", flush=True)


if __name__ == "__main__":
    main()
