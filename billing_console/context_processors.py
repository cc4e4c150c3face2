def console(request):
    return {
        "membership": getattr(request, "membership", None),
        "current_account": getattr(request, "account", None),
    }
